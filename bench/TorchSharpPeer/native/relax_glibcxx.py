"""Lets a native library built with GCC 13 load against Debian 12's libstdc++ (GCC 12).

LibTorchSharp asks libstdc++ for one symbol of GLIBCXX_3.4.32, std::ios_base_library_init (GCC 13 moved
iostream start-up into the library). This rewrites that version requirement, in place, to GLIBCXX_3.4.30
(same length, hash updated) and makes the symbol's references unversioned, so the loader accepts the system
libstdc++ and binds the symbol to ios_base_library_init.cpp's definition, preloaded. Running it twice
changes nothing.
"""
import struct
import sys

OLD, NEW = b"GLIBCXX_3.4.32", b"GLIBCXX_3.4.30"
SHT_DYNSYM, SHT_GNU_VERSYM, SHT_GNU_VERNEED = 11, 0x6FFFFFFF, 0x6FFFFFFE


def elf_hash(name: bytes) -> int:
    h = 0
    for c in name:
        h = (h << 4) + c
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g
    return h & 0xFFFFFFFF


def main(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    relaxed = set()  # version indices (vna_other) that named OLD
    for _, kind, _, _, offset, _, link, count, _, _ in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strings = sections[link][4]
        at = offset
        for _ in range(count):
            _, aux_count, _, aux_offset, next_offset = struct.unpack_from("<HHIII", data, at)
            aux = at + aux_offset
            for _ in range(aux_count):
                _, _, other, name, aux_next = struct.unpack_from("<IHHII", data, aux)
                start = strings + name
                if data[start:start + len(OLD) + 1] == OLD + b"\0":
                    data[start:start + len(NEW)] = NEW
                    struct.pack_into("<I", data, aux, elf_hash(NEW))
                    relaxed.add(other)
                aux += aux_next
            at += next_offset
    # references that asked for OLD become unversioned (index 1: global)
    cleared = 0
    for _, kind, _, _, offset, size, _, _, _, _ in sections:
        if kind != SHT_GNU_VERSYM:
            continue
        for at in range(offset, offset + size, 2):
            index, = struct.unpack_from("<H", data, at)
            if index & 0x7FFF in relaxed:
                struct.pack_into("<H", data, at, 1)
                cleared += 1
    open(path, "wb").write(data)
    print(f"{path}: {len(relaxed)} requirement(s) of {OLD.decode()} relaxed, {cleared} symbol reference(s) unversioned")


if __name__ == "__main__":
    main(sys.argv[1])
