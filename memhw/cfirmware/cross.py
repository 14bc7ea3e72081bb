"""Cross-build the firmware core for a Cortex-M4F and measure its flash and RAM.

The example port ``firmware/host/memhw_board_example.c`` (a 128 x 64 board, the core's
buffers, stack included, and the hardware-free stub HAL) is compiled with the C compiler
the ``ziglang`` package ships, for ``thumb-freestanding-eabihf`` with ``-mcpu=cortex_m4``
and its single-precision FPU, linked with section garbage collection, and sized with
pyelftools: flash = .vectors + .text + .rodata + .ARM.* + .data, RAM = .data + .bss.

``python -m memhw.cfirmware.cross`` prints the figures the README quotes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .build import CORE, HAL, PROTOCOL_C, ROOT, SOURCES

__all__ = ["TARGET", "MCU_DEFINES", "ImageSize", "cross_compile", "image_size", "undefined_symbols"]

HOST_DIR = ROOT / "firmware" / "host"
#: zig's names for the target: Thumb-2, no OS, hard-float ABI, Cortex-M4 with its FPU
TARGET = ["-target", "thumb-freestanding-eabihf", "-mcpu=cortex_m4+vfp4d16sp"]
#: the example port's build configuration (firmware/host/memhw_board_example.c has the buffer sizes)
MCU_DEFINES = ["-DMEMHW_CONNECTIONS_MAX=1", "-DMEMHW_CONVERT_CHUNK=2", "-DMEMHW_BATCH_ORDER=0",
               "-DMEMHW_CURVE_MAX=128", "-DMEMHW_ENDED_CLIENT=32"]
CFLAGS = ["-Os", "-std=c99", "-ffreestanding", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion",
          "-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections", "-fdata-sections"]
EXAMPLE = [HOST_DIR / name for name in ("memhw_stub_hal.c", "memhw_board_reference.c", "memhw_board_example.c",
                                         "memhw_freestanding.c")]
INCLUDES = [HOST_DIR / "include", CORE, HAL, HOST_DIR, PROTOCOL_C]


@dataclass(frozen=True)
class ImageSize:
    """Bytes of a linked image."""

    flash: int
    ram: int
    sections: dict

    def __str__(self) -> str:
        return f"flash {self.flash} B ({self.flash / 1024:.1f} kB), RAM {self.ram} B ({self.ram / 1024:.1f} kB)"


def _zig() -> list[str]:
    return [sys.executable, "-m", "ziglang", "cc"]


def cross_compile(out: Path) -> tuple[Path, list[Path]]:
    """Compile every source to an object and link the example firmware; (elf, objects).

    Raises
    ------
    subprocess.CalledProcessError
        A compile or link error (its output in ``stderr``).
    """
    out.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{p}" for p in INCLUDES]
    objects = []
    for src in SOURCES + EXAMPLE:
        obj = out / (src.stem + ".o")
        subprocess.run(_zig() + TARGET + CFLAGS + MCU_DEFINES + includes + ["-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True, text=True, timeout=120)
        objects.append(obj)
    elf = out / "memhw_example.elf"
    subprocess.run(_zig() + TARGET + [str(o) for o in objects] + ["-Wl,--gc-sections", "-Wl,--entry=_start", "-o",
                                                                   str(elf)],
                   check=True, capture_output=True, text=True, timeout=120)
    return elf, objects


def image_size(elf: Path) -> ImageSize:
    """Flash and RAM of a linked ELF image (allocated sections; NOBITS sections take RAM only)."""
    from elftools.elf.elffile import ELFFile

    flash = ram = 0
    sections = {}
    with open(elf, "rb") as f:
        for s in ELFFile(f).iter_sections():
            if not s["sh_flags"] & 0x2:  # SHF_ALLOC
                continue
            size = s["sh_size"]
            sections[s.name] = size
            writable = bool(s["sh_flags"] & 0x1)
            if s["sh_type"] != "SHT_NOBITS":
                flash += size  # code, constants, and the initial values of .data
            if writable:
                ram += size
    return ImageSize(flash, ram, sections)


def undefined_symbols(objects: list[Path]) -> set[str]:
    """Symbols the objects use but do not define (what the firmware needs from outside)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    defined, used = set(), set()
    for obj in objects:
        with open(obj, "rb") as f:
            for s in ELFFile(f).iter_sections():
                if isinstance(s, SymbolTableSection):
                    for sym in s.iter_symbols():
                        if not sym.name:
                            continue
                        (used if sym["st_shndx"] == "SHN_UNDEF" else defined).add(sym.name)
    return used - defined


def main(argv: list[str] | None = None) -> int:
    """Build the example firmware and print its size."""
    parser = argparse.ArgumentParser(prog="python -m memhw.cfirmware.cross", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        elf, objects = cross_compile(Path(tmp))
        size = image_size(elf)
        print(f"Cortex-M4F, 128 x 64 example port: {size}")
        for name, n in size.sections.items():
            print(f"  {name:<12} {n:>7} B")
        print("external symbols:", ", ".join(sorted(undefined_symbols(objects))) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
