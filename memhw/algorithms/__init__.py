"""Pure algorithms (numpy, no I/O), shared by the host procedures and the
board emulator's on-board implementations of the same loops."""
