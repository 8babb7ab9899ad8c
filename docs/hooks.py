"""mkdocs hook: the repository's CONTRIBUTING.md is the site's contributing.md page.

Its links into ``docs/`` are rewritten relative to the site (``docs/architecture.md`` ->
``architecture.md``), so one file serves GitHub and the site.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files


def on_files(files: Files, config) -> Files:
    root = Path(config.config_file_path).parent
    text = (root / "CONTRIBUTING.md").read_text()
    text = re.sub(r"\]\(docs/", "](", text)
    files.append(File.generated(config, "contributing.md", content=text))
    return files
