"""docs/integration.md's "Agents" lists the tools as the registry has them: every tool, in its order, with its kind
and its arguments (`?`: optional), so the guide cannot drift from what `tools/list` answers."""

import re
from pathlib import Path

from agents.tools import TOOLS

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integration.md"


def _section(heading: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_the_guide_lists_every_tool_with_its_kind_and_arguments():
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]*) \| [^|]+ \|$", _section("Agents"), re.MULTILINE)

    assert [name for name, _, _ in rows] == list(TOOLS)
    for name, kind, arguments in rows:
        tool = TOOLS[name]
        assert kind == tool.kind, name
        documented = dict(re.findall(r"`(\w+)`(\??)", arguments))
        required = set(tool.parameters["required"])
        assert documented == {
            argument: "" if argument in required else "?" for argument in tool.parameters["properties"]
        }, name
