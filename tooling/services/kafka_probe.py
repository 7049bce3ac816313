"""Ask a Kafka broker what it is: one ApiVersions v3 request over a plain socket.

aiokafka speaks ApiVersions only up to v2, which carries no feature levels. v3 (KIP-584)
adds the finalized ``metadata.version``, the broker's own statement of its release line,
so ``services status`` and the tests can say "Kafka 4.1" from the broker, not from us.

>>> info = decode_api_versions_v3(_example_response())
>>> info.release, info.major, info.api_ranges[0]
('4.1-IV1', 4, (0, 13))
"""

from __future__ import annotations

import dataclasses
import socket
import struct

API_VERSIONS = 18

# MetadataVersion feature levels, from org.apache.kafka.server.common.MetadataVersion.
METADATA_VERSIONS = {
    21: "3.9-IV0",
    22: "4.0-IV0",
    23: "4.0-IV1",
    24: "4.0-IV2",
    25: "4.0-IV3",
    26: "4.1-IV0",
    27: "4.1-IV1",
    28: "4.2-IV0",
    29: "4.2-IV1",
}


@dataclasses.dataclass(frozen=True)
class BrokerInfo:
    api_ranges: dict[int, tuple[int, int]]
    finalized: dict[str, int]

    @property
    def release(self) -> str:
        """The release line from the finalized metadata.version, e.g. ``4.1-IV1``."""
        level = self.finalized.get("metadata.version")
        if level is None:
            return "unknown"
        return METADATA_VERSIONS.get(level, f"metadata.version level {level}")

    @property
    def major(self) -> int:
        """Kafka's major version: 4 once metadata.version is 4.0-IV0 (level 22) or later."""
        level = self.finalized.get("metadata.version", 0)
        return 4 if level >= 22 else 3


def probe(host: str, port: int, timeout: float = 3.0) -> BrokerInfo:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode_api_versions_v3(correlation_id=1))
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        return decode_api_versions_v3(_read_exactly(sock, size))


def encode_api_versions_v3(correlation_id: int) -> bytes:
    client_id = b"fraudstream"
    header = struct.pack(">hhih", API_VERSIONS, 3, correlation_id, len(client_id)) + client_id
    header += b"\x00"  # no tagged fields (request header v2)
    body = _compact_string(b"fraudstream") + _compact_string(b"1") + b"\x00"
    message = header + body
    return struct.pack(">i", len(message)) + message


def decode_api_versions_v3(payload: bytes) -> BrokerInfo:
    reader = _Reader(payload)
    reader.int32()  # correlation id; the response header of ApiVersions is always v0
    error_code = reader.int16()
    if error_code:
        raise ConnectionError(f"broker answered ApiVersions with error code {error_code}")
    api_ranges = {}
    for _ in range(reader.uvarint() - 1):
        api_key, low, high = reader.int16(), reader.int16(), reader.int16()
        reader.skip_tagged_fields()
        api_ranges[api_key] = (low, high)
    reader.int32()  # throttle time
    finalized: dict[str, int] = {}
    for _ in range(reader.uvarint()):
        tag, size = reader.uvarint(), reader.uvarint()
        if tag != 2:  # 2 = FinalizedFeatures; the rest we do not need
            reader.skip(size)
            continue
        for _ in range(reader.uvarint() - 1):
            name = reader.compact_string()
            max_level, _min_level = reader.int16(), reader.int16()
            reader.skip_tagged_fields()
            finalized[name] = max_level
    return BrokerInfo(api_ranges, finalized)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ConnectionError("truncated ApiVersions response")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def skip(self, size: int) -> None:
        self.take(size)

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uvarint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str:
        return self.take(self.uvarint() - 1).decode()

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.skip(self.uvarint())


def _compact_string(value: bytes) -> bytes:
    return bytes([len(value) + 1]) + value


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _example_response() -> bytes:
    """A v3 response as a 4.1 broker sends it: Produce 0..13, metadata.version level 27."""
    feature = _compact_string(b"metadata.version") + struct.pack(">hh", 27, 1) + b"\x00"
    finalized = bytes([2]) + feature
    tags = bytes([1, 2, len(finalized)]) + finalized
    api_keys = bytes([2]) + struct.pack(">hhh", 0, 0, 13) + b"\x00"
    return struct.pack(">ih", 1, 0) + api_keys + struct.pack(">i", 0) + tags
