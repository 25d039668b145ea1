#!/usr/bin/env python3
"""Checks the links between the project's Markdown files: every relative link names a file or
folder that exists, and every `#anchor` a heading of the file it points into (GitHub's
anchors). Web links are not fetched. Exits 1 and lists each broken link.

    python3 scripts/check-links.py
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SKIP = ("vendor/", "tests/support/", "fuzz/", "bench/oidc/node_modules", "bench/oauth2-proxy/third_party")


def slug(heading):
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*|_(?=\w)|(?<=\w)_", lambda m: "" if m.group(0) in "`*" else m.group(0), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def outside_code(text, inline=True):
    """The file's lines with fenced code blocks blanked, and inline code too unless `inline`
    is false (headings keep theirs: it is part of their anchor)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
            continue
        if fenced:
            out.append("")
        else:
            out.append(re.sub(r"`[^`]*`", "``", line) if inline else line)
    return out


def anchors(path, cache={}):
    if path not in cache:
        found, seen = set(), {}
        with open(path, encoding="utf-8") as f:
            for line in outside_code(f.read(), inline=False):
                m = HEADING.match(line)
                if m:
                    a = slug(m.group(2))
                    n = seen.get(a, 0)
                    seen[a] = n + 1
                    found.add(a if n == 0 else f"{a}-{n}")
        cache[path] = found
    return cache[path]


def main():
    try:
        files = subprocess.run(
            ["git", "ls-files", "*.md"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (an exported tree): every Markdown file outside build output.
        files = sorted(
            os.path.relpath(os.path.join(d, f), ROOT)
            for d, dirs, names in os.walk(ROOT)
            for f in names
            if f.endswith(".md")
            and not any(part in ("target", "node_modules", ".git") for part in d.split(os.sep))
        )
    broken = []
    for md in files:
        if md.startswith(SKIP):
            continue
        with open(md, encoding="utf-8") as f:
            text = f.read()
        for number, line in enumerate(outside_code(text), 1):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http(s), mailto: not fetched
                path, _, fragment = target.partition("#")
                resolved = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
                if not os.path.exists(resolved):
                    broken.append(f"{md}:{number}: {target}: no such file")
                    continue
                if fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
                    broken.append(f"{md}:{number}: {target}: no heading #{fragment} in {resolved}")
    for b in broken:
        print(b)
    if broken:
        print(f"{len(broken)} broken links", file=sys.stderr)
        return 1
    print(f"links: {len(files)} Markdown files checked, none broken")
    return 0


if __name__ == "__main__":
    sys.exit(main())
