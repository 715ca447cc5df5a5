"""The rulebook language: Markdown and rulelang text read, parsed with spans kept, and checked
(names, types, units, dates, exceptions), ending in a CheckedRulebook."""
