"""cffi build of the C firmware core for the host (``memhw.cfirmware._core``).

Built at install time (``setup.py``: ``cffi_modules``) with the system C compiler. The core
(``firmware/core``), its generated tables and the reference frame codec
(``firmware_protocol/c``) are compiled as they are for a board; the HAL functions
(``firmware/hal/memhw_hal.h``) are ``extern "Python+C"`` callbacks implemented by
:mod:`memhw.cfirmware.hal` over the mock chip and periphery.

After editing the C sources, ``pip install -e .`` rebuilds the module.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "firmware" / "core"
HAL = ROOT / "firmware" / "hal"
PROTOCOL_C = ROOT / "firmware_protocol" / "c"
#: C sources of the core, in the order a board's build would list them
SOURCES = [CORE / name for name in ("memhw_core.c", "memhw_wire.c", "memhw_dispatch.c", "memhw_lines.c",
                                    "memhw_measure.c", "memhw_pulses.c", "memhw_selfcal.c", "memhw_onboard.c",
                                    "memhw_tuning.c", "memhw_calibration.c", "memhw_select.c", "memhw_tiles.c",
                                    "memhw_network.c")] + \
    [PROTOCOL_C / "memhw_frame.c", PROTOCOL_C / "memhw_layouts.c", PROTOCOL_C / "memhw_activations.c"]
INCLUDES = [CORE, HAL, PROTOCOL_C]
#: host-build capacities (a board chooses its own, docs/firmware.md)
DEFINES = [("MEMHW_CONNECTIONS_MAX", "16"), ("MEMHW_CONVERT_CHUNK", "64")]

def message_count() -> int:
    """MEMHW_MESSAGE_COUNT of the generated layout header (one counter per schema message)."""
    text = (PROTOCOL_C / "memhw_layouts.h").read_text(encoding="utf-8")
    return int(re.search(r"#define MEMHW_MESSAGE_COUNT (\d+)u", text).group(1))


CDEF = """
#define MEMHW_GAINS_MAX 8
#define MEMHW_REFERENCES_MAX 16
typedef struct { int16_t read_max; int16_t set_max; int16_t reset_max; int16_t gate_max; uint16_t width_max; }
    memhw_limits_t;
typedef struct {
    char serial[64]; char chip[64];
    uint16_t rows, cols; uint8_t dac_bits, adc_bits;
    float dac_line_lsb, dac_gate_lsb, adc_lsb;
    uint8_t n_gains; float tia_gains[8];
    float width_offset, width_lsb; uint16_t width_max_code;
    float v_read_max, v_set_max, v_reset_max, v_gate_max;
    memhw_limits_t abs_limits; int16_t gate_on_code;
    uint8_t n_references; float reference_ohms[16]; float reference_tolerance; float monitor_lsb;
    uint16_t max_frame; uint32_t max_message; uint32_t watchdog_ms;
} memhw_board_t;
typedef struct { uint8_t *frame; size_t frame_size; uint8_t *message; size_t message_size; } memhw_conn_buffers_t;
typedef struct {
    memhw_conn_buffers_t conn[...]; uint8_t n_conn;
    uint8_t *inbox; size_t inbox_size; uint8_t *cache; size_t cache_size; uint8_t *tx; size_t tx_size;
    void *planner; size_t planner_size; float *calibration; size_t calibration_size;
    uint8_t *tiles; size_t tiles_size;
} memhw_buffers_t;
typedef struct {
    uint32_t requests; uint32_t executed[MESSAGES]; uint32_t cache_hits; uint32_t bad_frames; uint32_t inbox_drops;
    uint32_t bytes_in, bytes_out;
    uint32_t reboots, watchdog_trips, sessions, takeovers, resumes, busy_answers, session_refusals;
    uint32_t pulses;
} memhw_counters_t;
typedef struct {
    memhw_board_t board;
    uint16_t boot_id; uint16_t session; int8_t owner; uint8_t busy;
    uint8_t last_status; char last_error[256];
    memhw_limits_t limits;
    int16_t levels[3][128]; uint8_t driven[3][128];
    memhw_counters_t counters;
    ...;
} memhw_core_t;

size_t memhw_decoder_buffer_size(size_t max_payload);
size_t memhw_frame_max_encoded(size_t max_payload);
"""

SOURCE = """
#include "memhw_core.h"
size_t memhw_decoder_buffer_size(size_t max_payload) { return MEMHW_DECODER_BUFFER_SIZE(max_payload); }
size_t memhw_frame_max_encoded(size_t max_payload) { return MEMHW_FRAME_MAX_ENCODED(max_payload); }
"""



def prototypes(header: Path, prefix: str) -> str:
    """The function declarations of ``header`` whose names start with ``prefix`` (comments dropped),
    so the cdef follows the C headers instead of repeating them."""
    text = re.sub(r"/\*.*?\*/", "", header.read_text(encoding="utf-8"), flags=re.S)
    found = re.findall(rf"^[A-Za-z_][\w ]*\*?\s*{prefix}\w*\([^;{{]*\);", text, flags=re.M)
    return "\n".join(" ".join(d.split()) for d in found)


ffibuilder = FFI()
ffibuilder.cdef(CDEF.replace("MESSAGES", str(message_count())) + prototypes(CORE / "memhw_core.h", "memhw_(?:core|program)_")
                + '\nextern "Python+C" {\n' + prototypes(HAL / "memhw_hal.h", "memhw_hal_") + "\n}\n")
ffibuilder.set_source(
    "memhw.cfirmware._core", SOURCE,
    sources=[str(p.relative_to(ROOT)) for p in SOURCES],  # setuptools wants paths relative to setup.py
    include_dirs=[str(p.relative_to(ROOT)) for p in INCLUDES],
    define_macros=DEFINES,
    extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)
