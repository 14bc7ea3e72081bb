"""Applications above the procedure layer: the LSTM experiments of the paper (and of our
own), run on one board or over a population of chip instances. They connect boards and
write figures; the library they use is :mod:`memhw.nn`."""
