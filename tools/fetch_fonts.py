"""Fetch the vendored handwriting fonts from npm ``@fontsource/*`` into ``htr/data/fonts/``.

Documents and reproduces how ``htr/data/fonts/`` was built; it is NOT needed at set-up time (the
font files, licences and manifest are committed). Run from the repository root::

    nice python -m tools.fetch_fonts [--jobs 4] [--cache /tmp/fontsource-cache]

Needs ``npm`` (reaching registry.npmjs.org), Pillow, fontTools, OpenCV and this repository's
``htr.data.synthetic.fonts.check_font``. For every package pinned in ``PACKAGES`` it

1. ``npm pack``s ``@fontsource/<slug>@<version>`` (cached) and reads its ``package.json``,
   ``metadata.json`` and licence file (``LICENSE`` / ``OFL.txt`` as shipped);
2. keeps the package only if the npm licence is OFL-1.1 or Apache-2.0 *and* the shipped
   licence text is that licence;
3. takes ONE latin-subset ``.woff`` per kept weight: 400 (or the weight closest to it) and,
   for multi-weight families, at most one extra heavy weight (700, else the heaviest >= 600).
   ``.woff`` rather than ``.woff2``: Pillow/FreeType opens both, but fontTools needs the
   ``brotli`` module for woff2 (not a project dependency), while woff is plain zlib;
4. checks each file with the project's ``check_font`` (all 52 ASCII letters with a real
   lowercase, no small caps; records the IAM characters it cannot render);
5. measures whether the script joins its letters (ink components of "minimum" shaped by
   Pillow), classifies style from ``STYLE`` (hand-checked on ``specimen.png``);
6. rewrites ``htr/data/fonts/files/``, ``fonts.json``, ``README.md`` and ``specimen.png``.

Debian's handwriting font packages are reserved for independent evaluation and are never
used here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from htr.argparsing import PlainArgumentParser, int_at_least
from htr.data.synthetic.fonts import FONTS_DIR as OUT  # the package's font folder, which this rewrites
from htr.data.synthetic.fonts import check_font as _check_font
from htr.errors import ConfigError, HTRError, UsageError, run_main

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALLOWED_LICENSES = {
    "OFL-1.1": ("SIL OPEN FONT LICENSE",),
    "Apache-2.0": ("APACHE LICENSE", "VERSION 2.0"),
}
SPECIMEN_TEXT = "Handwriting minimum quick 1987"

# The fontpkg-* families the project used before (requirements.txt); all vendored here too.
FONTPKG_FAMILIES = (
    "caveat", "dancing-script", "delius", "great-vibes", "indie-flower", "kalam",
    "pacifico", "satisfy", "shadows-into-light", "yellowtail", "zeyada",
)

# @fontsource package slug -> pinned version (npm view @fontsource/<slug> version, 2025).
PACKAGES: dict[str, str] = {
    "alex-brush": "5.3.0", "allison": "5.3.0", "allura": "5.3.0", "amatic-sc": "5.3.0",
    "annie-use-your-telescope": "5.3.0", "architects-daughter": "5.3.0", "arizonia": "5.3.0",
    "bad-script": "5.3.0", "beth-ellen": "5.3.0", "bilbo": "5.3.0", "birthstone": "5.3.0",
    "calligraffitti": "5.3.0", "caveat": "5.3.0", "caveat-brush": "5.3.0",
    "cedarville-cursive": "5.3.0", "charm": "5.2.7", "clicker-script": "5.3.0",
    "comforter-brush": "5.3.0", "coming-soon": "5.3.0", "cookie": "5.3.0", "courgette": "5.3.0",
    "covered-by-your-grace": "5.3.0", "crafty-girls": "5.3.0", "damion": "5.3.0",
    "dancing-script": "5.3.0", "dawning-of-a-new-day": "5.3.0", "dekko": "5.3.0",
    "delicious-handrawn": "5.3.0", "delius": "5.3.0", "delius-swash-caps": "5.3.0",
    "east-sea-dokdo": "5.3.0", "edu-nsw-act-foundation": "5.3.0", "edu-sa-beginner": "5.3.0",
    "edu-tas-beginner": "5.3.0", "edu-vic-wa-nt-beginner": "5.3.0", "gaegu": "5.3.0",
    "gamja-flower": "5.3.0", "give-you-glory": "5.3.0", "gloria-hallelujah": "5.3.0",
    "gochi-hand": "5.3.0", "grape-nuts": "5.3.0", "great-vibes": "5.3.0", "handlee": "5.3.0",
    "herr-von-muellerhoff": "5.3.0", "hi-melody": "5.3.0", "homemade-apple": "5.3.0",
    "indie-flower": "5.3.0", "itim": "5.3.0", "just-another-hand": "5.3.0",
    "just-me-again-down-here": "5.3.0", "kalam": "5.3.0", "kaushan-script": "5.3.0",
    "kite-one": "4.5.0", "klee-one": "5.3.0", "kristi": "5.3.0", "la-belle-aurore": "5.3.0",
    "leckerli-one": "5.3.0", "liu-jian-mao-cao": "5.3.0", "long-cang": "5.3.0",
    "loved-by-the-king": "5.3.0", "ma-shan-zheng": "5.3.1", "mali": "5.3.0", "mansalva": "5.3.0",
    "marck-script": "5.3.0", "mea-culpa": "5.3.0", "meddon": "5.3.0", "merienda": "5.3.0",
    "monsieur-la-doulaise": "5.3.0", "montez": "5.3.0", "mr-dafoe": "5.3.0",
    "mr-de-haviland": "5.3.0", "mrs-saint-delafield": "5.3.0", "ms-madi": "5.3.0",
    "mynerve": "5.3.0", "nanum-brush-script": "5.3.0", "nanum-pen-script": "5.3.0",
    "nerko-one": "5.3.0", "neucha": "5.3.0", "niconne": "5.3.0", "norican": "5.3.0",
    "nothing-you-could-do": "5.3.0", "over-the-rainbow": "5.3.0", "pacifico": "5.3.0",
    "parisienne": "5.3.0", "patrick-hand": "5.3.0", "permanent-marker": "5.3.0",
    "petit-formal-script": "5.3.0", "pinyon-script": "5.3.0", "playball": "5.3.0",
    "playpen-sans": "5.3.0", "poor-story": "5.3.0", "qwigley": "5.2.8", "rancho": "5.3.0",
    "reenie-beanie": "5.3.0", "rochester": "5.3.0", "rock-salt": "5.3.0", "rouge-script": "5.3.0",
    "ruthie": "5.3.0", "sacramento": "5.3.0", "satisfy": "5.3.0", "schoolbell": "5.3.0",
    "sedgwick-ave": "5.3.0", "shadows-into-light": "5.3.0", "shadows-into-light-two": "5.3.0",
    "shantell-sans": "5.3.0", "short-stack": "5.3.0", "sriracha": "5.3.0",
    "sue-ellen-francisco": "5.3.0", "sunshiney": "5.3.0", "swanky-and-moo-moo": "5.3.0",
    "tangerine": "5.3.0", "the-girl-next-door": "5.3.0", "vujahday-script": "5.3.0",
    "waiting-for-the-sunrise": "5.3.0", "walter-turncoat": "5.3.0", "yellowtail": "5.3.0",
    "zeyada": "5.3.0", "zhi-mang-xing": "5.3.0",
}

# Looked for but not published on npm as @fontsource/<slug> (npm view: 404).
UNPUBLISHED = ("cherish", "mrs-sheppards", "shalimar", "srisakdi")

# Style, by inspection of the glyphs (see specimen.png):
#   print   - separate letters (hand printing), cursive - joined or calligraphic script,
#   marker  - thick felt-pen / brush strokes.
_PRINT = """
annie-use-your-telescope architects-daughter calligraffitti caveat coming-soon
crafty-girls dekko delius delius-swash-caps
edu-nsw-act-foundation edu-sa-beginner edu-tas-beginner edu-vic-wa-nt-beginner gaegu
gamja-flower give-you-glory gloria-hallelujah grape-nuts handlee hi-melody
indie-flower itim just-me-again-down-here kalam kite-one klee-one loved-by-the-king mali
mynerve nanum-pen-script neucha nothing-you-could-do over-the-rainbow patrick-hand playpen-sans poor-story
reenie-beanie schoolbell shadows-into-light shadows-into-light-two shantell-sans short-stack
sriracha sue-ellen-francisco sunshiney swanky-and-moo-moo the-girl-next-door
waiting-for-the-sunrise walter-turncoat zeyada amatic-sc liu-jian-mao-cao long-cang
"""
_MARKER = """
caveat-brush covered-by-your-grace delicious-handrawn east-sea-dokdo gochi-hand
just-another-hand kaushan-script ma-shan-zheng mansalva nanum-brush-script nerko-one
permanent-marker rancho rock-salt sedgwick-ave zhi-mang-xing
"""
STYLE: dict[str, str] = {s: "cursive" for s in PACKAGES}
STYLE.update({s: "print" for s in _PRINT.split()})
STYLE.update({s: "marker" for s in _MARKER.split()})

# Judgement overrides of the measured "joined" flag (slug -> joined), where the ink-component
# count of "minimum" misleads (e.g. a print hand whose letters touch, a script with gaps).
JOINED_OVERRIDE: dict[str, bool] = {
    # Joined scripts with hairline connections that break at 64 px (checked at 64-96 px).
    "allison": True, "herr-von-muellerhoff": True, "monsieur-la-doulaise": True,
    "rouge-script": True, "ruthie": True,
}

# Packages that pass the automatic checks but are rejected by inspection of the specimen.
EXCLUDE: dict[str, str] = {
    "rock-salt": "all-caps hand: lowercase drawn as (hand-varied) capitals, which the "
    "IoU small-caps check misses",
}

# Held-out families (test_unseen only): representative print / cursive / marker hands.
# Chosen as ordinary-looking hands, with no sibling family left in training (e.g. not
# shadows-into-light(-two), caveat(-brush), nanum-*, edu-*).
HELDOUT = (
    "indie-flower", "satisfy",  # the previous held-out pair (print, cursive)
    "annie-use-your-telescope", "handlee", "patrick-hand", "reenie-beanie",  # print
    "bad-script", "homemade-apple", "la-belle-aurore", "ms-madi",  # cursive
    "just-another-hand", "mansalva", "sedgwick-ave",  # marker
)


def run(cmd: list[str], cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def npm_pack(slug: str, version: str, cache: Path) -> Path:
    tgz = cache / f"fontsource-{slug}-{version}.tgz"
    if not tgz.exists():
        run(["npm", "pack", "--silent", f"@fontsource/{slug}@{version}", "--pack-destination", str(cache)])
    if not tgz.exists():
        raise FileNotFoundError(tgz)
    return tgz


def read_member(tar: tarfile.TarFile, name: str) -> bytes | None:
    try:
        f = tar.extractfile(name)
    except KeyError:
        return None
    return f.read() if f else None


def pick_weights(weights: list[int], files: set[str]) -> list[int]:
    """400 (or the nearest), plus one heavy weight (700, else the heaviest >= 600) if present."""
    ws = sorted(w for w in weights if w in files)
    if not ws:
        return []
    base = min(ws, key=lambda w: (abs(w - 400), w))
    heavy = [w for w in ws if w >= 600 and w != base]
    extra = 700 if 700 in heavy else (max(heavy) if heavy else None)
    return [base] + ([extra] if extra else [])


def joined_components(path: Path, word: str = "minimum") -> int:
    """Connected ink components (ignoring dots < 4% of the ink) of ``word`` shaped by Pillow."""
    font = ImageFont.truetype(str(path), 64)
    x0, y0, x1, y1 = font.getbbox(word)
    img = Image.new("L", (x1 - x0 + 20, y1 - y0 + 20), 0)
    ImageDraw.Draw(img).text((10 - x0, 10 - y0), word, fill=255, font=font)
    ink = (np.asarray(img) > 100).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= 0.04 * max(1, areas.sum())).sum())


def process(slug: str, version: str, cache: Path, stage: Path) -> dict:
    """Fetch one package; return {"fonts": [...]} or {"dropped": {...}}."""
    pkg = f"@fontsource/{slug}"
    try:
        tgz = npm_pack(slug, version, cache)
    except Exception as err:  # noqa: BLE001
        return {"dropped": {"package": pkg, "version": version, "reason": f"npm pack failed: {err}"}}
    with tarfile.open(tgz) as tar:
        names = set(tar.getnames())
        pj = json.loads(read_member(tar, "package/package.json") or b"{}")
        meta = json.loads(read_member(tar, "package/metadata.json") or b"{}")
        lic_name = next((n for n in ("package/LICENSE", "package/OFL.txt", "package/LICENSE.txt") if n in names), None)
        lic_text = (read_member(tar, lic_name) or b"").decode("utf-8", "replace") if lic_name else ""
        license_id = pj.get("license", "")
        drop = lambda reason: {"dropped": {"package": pkg, "version": version, "reason": reason}}  # noqa: E731
        if slug in EXCLUDE:
            return drop(EXCLUDE[slug])
        if license_id not in ALLOWED_LICENSES:
            return drop(f"npm licence {license_id!r} is not OFL-1.1/Apache-2.0")
        upper = lic_text.upper()
        if not lic_text or not all(k in upper for k in ALLOWED_LICENSES[license_id]):
            return drop(f"shipped licence file ({lic_name}) is not the {license_id} text")
        fam_id = meta.get("id", slug)
        files = {}
        for n in names:
            m = re.fullmatch(rf"package/files/{re.escape(fam_id)}-latin-(\d+)-normal\.woff", n)
            if m:
                files[int(m.group(1))] = n
        weights = pick_weights(meta.get("weights", sorted(files)), set(files))
        if not weights:
            return drop("no latin-subset normal .woff file")
        family = meta.get("family", slug)
        dest = stage / slug
        dest.mkdir(parents=True, exist_ok=True)
        out, problems = [], []
        for w in weights:
            fname = Path(files[w]).name
            (dest / fname).write_bytes(read_member(tar, files[w]))
            try:
                chars, missing, reason = _check_font(str(dest / fname))
            except Exception as err:  # noqa: BLE001
                problems.append(f"{w}: unreadable ({err})")
                (dest / fname).unlink()
                continue
            if not all(c in chars for c in LETTERS):
                problems.append(f"{w}: {reason}")
                (dest / fname).unlink()
                continue
            comps = joined_components(dest / fname)
            out.append({
                "family": slug,
                "name": f"{family.replace(' ', '')}-{w}",
                "display_name": family,
                "weight": w,
                "file": f"files/{slug}/{fname}",
                "package": pkg,
                "version": pj.get("version", version),
                "license": license_id,
                "category": meta.get("category", ""),
                "style": STYLE[slug],
                "joined": JOINED_OVERRIDE.get(slug, comps <= 3),
                "minimum_components": comps,
                "heldout": slug in HELDOUT,
                "missing_chars": missing,
                "missing_reason": reason,
                "bytes": (dest / fname).stat().st_size,
            })
        if not out:
            shutil.rmtree(dest)
            return drop("; ".join(problems))
        (dest / "LICENSE").write_text(lic_text, encoding="utf-8")
        if problems:
            for o in out:
                o["weights_dropped"] = "; ".join(problems)
        return {"fonts": out}


def label_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def write_specimen(fonts: list[dict], path: Path) -> None:
    """One row per family (its base weight): name, style, and SPECIMEN_TEXT at 40 px."""
    rows = [f for f in fonts if f["weight"] == min(g["weight"] for g in fonts if g["family"] == f["family"])]
    row_h, label_w, text_w = 62, 250, 760
    cols = 2
    nrow = (len(rows) + cols - 1) // cols
    img = Image.new("L", (cols * (label_w + text_w), nrow * row_h + 30), 255)
    draw = ImageDraw.Draw(img)
    small = label_font(14)
    draw.text((8, 6), f"{len(rows)} families (* = held out); sample: {SPECIMEN_TEXT!r} at 40 px", fill=0, font=small)
    for i, f in enumerate(rows):
        col, r = divmod(i, nrow)
        x0, y0 = col * (label_w + text_w), 30 + r * row_h
        tag = f"{'*' if f['heldout'] else ' '} {f['display_name']}"
        draw.text((x0 + 8, y0 + 14), tag, fill=0, font=small)
        draw.text((x0 + 8, y0 + 32), f"  {f['style']}{', joined' if f['joined'] else ''}", fill=110, font=small)
        font = ImageFont.truetype(str(OUT / f["file"]), 40)
        left, top, right, bottom = font.getbbox(SPECIMEN_TEXT)
        sample = Image.new("L", (right - left + 4, bottom - top + 4), 255)
        ImageDraw.Draw(sample).text((2 - left, 2 - top), SPECIMEN_TEXT, fill=0, font=font)
        # Some fonts draw far larger than others at the same em size: shrink to fit the row.
        sample.thumbnail((text_w - 10, row_h - 6), Image.LANCZOS)
        img.paste(sample, (x0 + label_w, y0 + (row_h - sample.height) // 2))
        draw.line([(x0, y0 + row_h - 1), (x0 + label_w + text_w, y0 + row_h - 1)], fill=215)
    img = img.point(lambda v: 0 if v < 96 else (128 if v < 200 else 255)).convert("P", palette=Image.ADAPTIVE, colors=4)
    img.save(path, optimize=True)


def write_readme(fonts: list[dict], dropped: list[dict], total_bytes: int, path: Path) -> None:
    fams: dict[str, list[dict]] = {}
    for f in fonts:
        fams.setdefault(f["family"], []).append(f)
    by_style = {s: sum(1 for v in fams.values() if v[0]["style"] == s) for s in ("print", "cursive", "marker")}
    held = [k for k, v in fams.items() if v[0]["heldout"]]
    held_style = {s: sum(1 for k in held if fams[k][0]["style"] == s) for s in ("print", "cursive", "marker")}
    lines = [
        "# Vendored handwriting fonts (npm `@fontsource`)",
        "",
        "Generated by `tools/fetch_fonts.py`; do not edit by hand (re-run the script).",
        "",
        f"**{len(fams)} families, {len(fonts)} font files, {total_bytes / 1e6:.2f} MB in `files/`** "
        f"({by_style['print']} print, {by_style['cursive']} cursive, {by_style['marker']} marker). "
        f"Held out (used only by `test_unseen`): {len(held)} families "
        f"({held_style['print']} print, {held_style['cursive']} cursive, {held_style['marker']} marker).",
        "",
        "**Rule: Debian's handwriting font packages (`fonts-*` from apt) are reserved for the",
        "independent evaluation and are never used here, nor for training or model selection.**",
        "",
        "## Contents",
        "",
        "- `files/<family>/<family>-latin-<weight>-normal.woff`: the latin subset of the Google",
        "  Fonts family as packaged by Fontsource; `files/<family>/LICENSE`: the licence text",
        "  shipped in that npm package (SIL OFL 1.1 or Apache 2.0 only).",
        "- `fonts.json`: manifest (`fonts`: one entry per file, sorted by family; `dropped`:",
        "  packages rejected, with the reason).",
        "- `specimen.png`: one row per family, `" + SPECIMEN_TEXT + "` at 40 px (`*` = held out).",
        "",
        "Per family: the 400 weight (or the closest) and, for multi-weight families, at most one",
        "extra heavy weight (700, else the heaviest >= 600) for stroke-width variety.",
        "Files are WOFF (zlib): Pillow/FreeType opens `.woff` and `.woff2` directly",
        "(`ImageFont.truetype(path, size)`), but fontTools needs the `brotli` module for WOFF2,",
        "so WOFF keeps `fontTools.ttLib.TTFont` (used by the font checks) working.",
        "",
        "Checks (`htr.data.synthetic.fonts.check_font`): every file has all 52 ASCII letters with a",
        "real lowercase (not small caps); `missing_chars` lists the IAM characters it cannot",
        "render (no glyph / empty glyph / lowercase drawn as the capital). `joined` tells whether",
        "the script connects its letters when Pillow shapes a word (measured as <= 3 ink",
        "components of \"minimum\", `minimum_components`; judgement overrides in the script):",
        "for joined fonts, glyph-by-glyph rendering would break the joins.",
        "",
        "Style: `print` (separate letters), `cursive` (joined or calligraphic script), `marker`",
        "(thick felt-pen / brush strokes), assigned by inspection of the specimen.",
        "",
        "## Re-fetch",
        "",
        "```",
        "nice python -m tools.fetch_fonts          # from the repo root; needs npm + registry",
        "```",
        "",
        "It `npm pack`s every pinned `@fontsource/<slug>@<version>` (cache: `--cache`), keeps",
        "OFL-1.1 / Apache-2.0 packages whose shipped licence text matches, extracts the files,",
        "runs the checks and rewrites `files/`, `fonts.json`, this README and `specimen.png`.",
        "Not needed at set-up time: everything it produces is committed.",
        "",
        "## Families",
        "",
        "| family | style | joined | held out | licence | version | weights | missing IAM chars |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for slug in sorted(fams):
        v = fams[slug]
        f = v[0]
        miss = "".join(sorted(set("".join(x["missing_chars"] for x in v))))
        miss_md = ("`" + miss.replace("|", "\\|") + "`") if miss.strip("`") else ("(`)" if miss else "")
        if "`" in miss:
            miss_md = "`` " + miss.replace("|", "\\|") + " ``"
        lines.append(
            f"| {f['display_name']} (`{slug}`) | {f['style']} | {'yes' if f['joined'] else 'no'} | "
            f"{'**yes**' if f['heldout'] else ''} | {f['license']} | {f['version']} | "
            f"{', '.join(str(x['weight']) for x in v)} | {miss_md} |"
        )
    lines += ["", "## Dropped", "", "| package | reason |", "|---|---|"]
    for d in dropped:
        reason = d["reason"].replace("|", "\\|")
        lines.append(f"| `{d['package']}` | {reason} |")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


class FetchError(HTRError):
    """The fetched set lacks what the project needs (e.g. a held-out family); nothing to fix in the input."""

    exit_code = 1


def main(argv: list[str] | None = None) -> None:
    ap = PlainArgumentParser(prog="python -m tools.fetch_fonts", description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int_at_least(1), default=3, help="parallel npm pack downloads")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "fontsource-cache")
    args = ap.parse_args(argv)
    # Checked before the vendored files/ folder is cleared below: bad input must leave it as it is.
    if args.cache.exists() and not args.cache.is_dir():
        raise ConfigError("cache", f"{args.cache}: not a folder")
    if shutil.which("npm") is None:
        raise UsageError("npm not found: install Node.js (npm) to fetch the @fontsource packages")
    args.cache.mkdir(parents=True, exist_ok=True)
    stage = OUT / "files"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    slugs = sorted(PACKAGES)
    # Download in parallel, then process serially (the checks are CPU-bound and deterministic).
    def fetch(s: str) -> None:
        try:
            npm_pack(s, PACKAGES[s], args.cache)
        except Exception:  # noqa: BLE001 - reported by process()
            pass

    with ThreadPoolExecutor(args.jobs) as ex:
        list(ex.map(fetch, slugs))
    fonts, dropped = [], []
    for s in slugs:
        res = process(s, PACKAGES[s], args.cache, stage)
        fonts += res.get("fonts", [])
        if "dropped" in res:
            dropped.append(res["dropped"])
        print(f"{s:28s} {'DROPPED: ' + res['dropped']['reason'] if 'dropped' in res else ' '.join(f['name'] for f in res['fonts'])}", flush=True)
    for s in UNPUBLISHED:
        dropped.append({"package": f"@fontsource/{s}", "version": None, "reason": "not published on npm (npm view: 404)"})
    dropped.sort(key=lambda d: d["package"])
    fonts.sort(key=lambda f: (f["family"], f["weight"]))
    missing_fontpkg = [s for s in FONTPKG_FAMILIES if not any(f["family"] == s for f in fonts)]
    if missing_fontpkg:
        print(f"WARNING: fontpkg families not vendored: {missing_fontpkg}", file=sys.stderr)
    unknown_held = [s for s in HELDOUT if not any(f["family"] == s for f in fonts)]
    if unknown_held:
        raise FetchError(f"held-out families not kept: {unknown_held}")
    total = sum(f["bytes"] for f in fonts) + sum(p.stat().st_size for p in stage.glob("*/LICENSE"))
    manifest = {
        "source": "npm @fontsource",
        "generated_by": "tools/fetch_fonts.py",
        "note": "Debian's handwriting font packages are reserved for independent evaluation; never used here.",
        "total_bytes": total,
        "fonts": [{k: v for k, v in f.items() if k != "bytes"} | {"bytes": f["bytes"]} for f in fonts],
        "dropped": dropped,
    }
    (OUT / "fonts.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write_specimen(fonts, OUT / "specimen.png")
    write_readme(fonts, dropped, total, OUT / "README.md")
    nfam = len({f["family"] for f in fonts})
    print(f"kept {nfam} families / {len(fonts)} files, {total / 1e6:.2f} MB; dropped {len(dropped)}")


if __name__ == "__main__":
    run_main(main, prog="python -m tools.fetch_fonts")
