"""Read a tap's Singer output and check it the way a target would."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from jsonschema import Draft7Validator, FormatChecker


@dataclass
class SingerOutput:
    """The messages of one run, grouped by stream."""

    schemas: dict[str, dict] = field(default_factory=dict)
    key_properties: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    states: list[dict] = field(default_factory=list)
    state_lines: list[str] = field(default_factory=list)
    stdout: str = ""

    @classmethod
    def parse(cls, stdout: str) -> SingerOutput:
        """Parse stdout, failing on any line that is not a whole JSON message."""
        output = cls(stdout=stdout)
        for line in stdout.splitlines():
            message = json.loads(line)
            kind = message["type"]
            stream = message.get("stream")
            if kind == "SCHEMA":
                output.schemas[stream] = message["schema"]
                output.key_properties[stream] = message["key_properties"]
            elif kind == "RECORD":
                assert stream in output.schemas, f"RECORD of {stream} before its SCHEMA"
                output.records[stream].append(message["record"])
            elif kind == "STATE":
                output.states.append(message["value"])
                output.state_lines.append(line)
        return output

    def count(self, stream: str) -> int:
        """Return how many records a stream had."""
        return len(self.records.get(stream, []))

    def keys(self, stream: str) -> list[tuple]:
        """Return each record's key, in the order of the stream's key properties."""
        names = self.key_properties[stream]
        return [tuple(record[name] for name in names) for record in self.records[stream]]

    def invalid_records(self, stream: str) -> list[str]:
        """Return the schema violations of a stream's records against its own SCHEMA."""
        validator = Draft7Validator(self.schemas[stream], format_checker=FormatChecker())
        return [
            f"{error.json_path}: {error.message}"
            for record in self.records[stream]
            for error in validator.iter_errors(record)
        ]
