"""MS-OVBA compression (section 2.4.1): the LZ77 variant that VBA uses for module source and the dir stream.

A CompressedContainer is a signature byte 0x01 followed by chunks. Each chunk encodes up to 4096
decompressed bytes behind a 2-byte header (bits 0-11: chunk size - 3, bits 12-14: 0b011, bit 15: 1 if
compressed). A compressed chunk is a run of token sequences: a flag byte, then eight tokens, each a
literal byte (flag bit 0) or a 2-byte copy token (flag bit 1) whose offset/length split depends on the
position inside the chunk. Written here from the spec because the one PyPI package for it truncates
long modules.
"""

from __future__ import annotations

import struct

CHUNK_SIZE = 4096
_SIGNATURE = 0x01
_HEADER_SIGNATURE = 0b011 << 12


def _copy_token_bits(position: int) -> tuple[int, int]:
    """(bit count of the offset, maximum length) of a copy token at a position inside a chunk (2.4.1.3.19.1).

    ``position`` is the number of bytes already decompressed in the current chunk (>= 1).
    """
    bit_count = max((position - 1).bit_length(), 4)
    length_mask = 0xFFFF >> bit_count
    return bit_count, length_mask + 3


def decompress(data: bytes) -> bytes:
    """Decompress a CompressedContainer; raises ValueError on malformed input."""
    if not data or data[0] != _SIGNATURE:
        raise ValueError("not an MS-OVBA compressed container: first byte must be 0x01")
    out = bytearray()
    pos = 1
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError(f"truncated chunk header at byte {pos}")
        (header,) = struct.unpack_from("<H", data, pos)
        size = (header & 0x0FFF) + 3
        if (header >> 12) & 0b111 != 0b011:
            raise ValueError(f"bad chunk signature at byte {pos}")
        compressed = bool(header & 0x8000)
        end = min(pos + size, len(data))
        pos += 2
        if not compressed:
            if end - pos != CHUNK_SIZE:
                raise ValueError(f"raw chunk at byte {pos - 2} does not hold {CHUNK_SIZE} bytes")
            out += data[pos:end]
            pos = end
            continue
        chunk_start = len(out)
        while pos < end:
            flags = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if not (flags >> bit) & 1:
                    out.append(data[pos])
                    pos += 1
                    continue
                if pos + 2 > end:
                    raise ValueError(f"truncated copy token at byte {pos}")
                (token,) = struct.unpack_from("<H", data, pos)
                pos += 2
                bit_count, _ = _copy_token_bits(len(out) - chunk_start)
                length = (token & (0xFFFF >> bit_count)) + 3
                offset = (token >> (16 - bit_count)) + 1
                if offset > len(out) - chunk_start:
                    raise ValueError(f"copy token at byte {pos - 2} points before its chunk")
                start = len(out) - offset
                for k in range(length):  # byte by byte: the source may overlap the destination
                    out.append(out[start + k])
    return bytes(out)


def _compress_chunk(chunk: bytes) -> bytes:
    """Compress one chunk of at most 4096 bytes into its token sequences (without the header).

    Greedy longest match, like the spec's reference algorithm (2.4.1.3.19.4), with a hash chain on
    3-byte prefixes instead of a linear scan so long modules compress fast.
    """
    n = len(chunk)
    out = bytearray()
    heads: dict[bytes, list[int]] = {}
    pos = 0
    while pos < n:
        flag_index = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if pos >= n:
                break
            best_len = 0
            best_off = 0
            if pos > 0 and pos + 3 <= n:
                # As in the spec: the nearest of the longest matches, lengths measured up to the chunk's
                # end and only then capped at the token's maximum (so the output matches the reference).
                limit = n - pos
                for cand in reversed(heads.get(chunk[pos : pos + 3], ())):
                    length = 3
                    while length < limit and chunk[cand + length] == chunk[pos + length]:
                        length += 1
                    if length > best_len:
                        best_len, best_off = length, pos - cand
                        if length == limit:
                            break
                best_len = min(best_len, _copy_token_bits(pos)[1])
            step = best_len if best_len >= 3 else 1
            if best_len >= 3:
                bit_count, _ = _copy_token_bits(pos)
                token = ((best_off - 1) << (16 - bit_count)) | (best_len - 3)
                out += struct.pack("<H", token)
                flags |= 1 << bit
            else:
                out.append(chunk[pos])
            for p in range(pos, pos + step):
                if p + 3 <= n:
                    heads.setdefault(chunk[p : p + 3], []).append(p)
            pos += step
        out[flag_index] = flags
    return bytes(out)


def compress(data: bytes) -> bytes:
    """Compress bytes into a CompressedContainer that ``decompress`` (and Office) read back exactly."""
    out = bytearray([_SIGNATURE])
    for start in range(0, len(data), CHUNK_SIZE):
        chunk = data[start : start + CHUNK_SIZE]
        body = _compress_chunk(chunk)
        if len(body) > CHUNK_SIZE:
            if len(chunk) < CHUNK_SIZE:
                # A raw chunk always decompresses to 4096 bytes, so a short incompressible tail has no
                # valid encoding; VBA source text never gets here.
                raise ValueError("incompressible final chunk: cannot encode it in MS-OVBA")
            out += struct.pack("<H", _HEADER_SIGNATURE | (CHUNK_SIZE + 2 - 3))
            out += chunk
        else:
            out += struct.pack("<H", 0x8000 | _HEADER_SIGNATURE | (len(body) + 2 - 3))
            out += body
    return bytes(out)
