"""QA rules, call scores, sampling and review over transcripts."""

__all__: list[str] = []
