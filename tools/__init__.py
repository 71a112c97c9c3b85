"""Developer tooling: never shipped. pyproject's `packages.find` includes only `chat*` and
`chat_operator*`, so the wheel and the image hold none of this; run it from a checkout."""
