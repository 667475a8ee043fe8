"""Size and shape limits on client input, with defaults that fit OWASP's advice.

One frozen value, built from configuration and passed down; every check of
client input against a bound reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 1024 * 1024
    """A frame (one message or a batch) larger than this gets `too_large`."""
    max_message_bytes: int = 64 * 1024
    """One message object larger than this (encoded) gets `too_large`."""
    max_batch_messages: int = 1000
    max_annotation_bytes: int = 64 * 1024
    """An annotation whose encoded size after a write would exceed this: `too_large`."""
    max_fields: int = 64
    max_field_name_chars: int = 64
    max_id_chars: int = 128
    max_op_id_chars: int = 128
    max_tags: int = 256
    max_tag_chars: int = 128
    max_value_depth: int = 8
    """Nesting depth of free-form field values (lists/objects)."""
    max_text_op_components: int = 10_000
    max_presence_bytes: int = 4 * 1024
