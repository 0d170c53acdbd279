"""Write Singer messages fast: msgspec encoding, and no flush after every record."""

from __future__ import annotations

import sys

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override


class RecordBufferingWriter(MsgSpecWriter):
    """Flush stdout after SCHEMA, STATE and the like, but let RECORD lines buffer.

    Flushing each record costs a system call per line. A target never needs a record
    before the STATE that follows it, so flushing with every other message is enough.
    """

    @override
    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()
