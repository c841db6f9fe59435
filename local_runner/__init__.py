"""The drop-zone host of the dedup engine: watch, settle, dedupe, move with a journal, upload."""
