"""What the exercise pages' tests share."""


def solution_lines(text: str) -> list[str]:
    """The prose lines inside a page's solution blocks (long enough to be distinctive)."""
    lines, inside = [], False
    for line in text.splitlines():
        if "{solution-start}" in line:
            inside = True
        elif "{solution-end}" in line:
            inside = False
        elif inside and len(line) > 40 and not line.startswith(("```", ":", "#")):
            lines.append(line.strip())
    return lines
