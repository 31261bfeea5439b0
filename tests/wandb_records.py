"""Reads an offline W&B run file (run-<id>.wandb) back: a LevelDB-style log of protobuf records.

wandb 0.31 no longer ships a Python reader; the format is 32 KiB blocks of chunks, each with a
7-byte header (CRC32, little-endian length, type: 1 full, 2 first, 3 middle, 4 last), after a
7-byte file header.
"""

import json
import struct
import time
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024


def read_records(path: Path) -> list:
    data, position, records, pending = path.read_bytes(), 7, [], b""
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # a block's tail too short for a header is padding
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 0 or len(chunk) < length:  # zero padding, or a chunk not yet written out
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def finished_records(path: Path, timeout: float = 60.0) -> list:
    """The records of a finished run, once its exit record is on disk.

    wandb.finish() returns when the wandb-core service has handled the exit record, not when the
    service has written the file out; on a loaded machine the last records arrive a moment later.
    """
    deadline = time.monotonic() + timeout
    while True:
        records = read_records(path)
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        if time.monotonic() > deadline:
            kinds = [record.WhichOneof("record_type") for record in records]
            raise AssertionError(f"{path} has no exit record after {timeout} s: {kinds}")
        time.sleep(0.2)


def run_contents(run_file: Path) -> tuple[dict, list[dict]]:
    """(config, history rows) of a finished offline run file; values decoded from JSON."""
    config, history = {}, []
    for record in finished_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            row = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            history.append(row)
    return config, history
