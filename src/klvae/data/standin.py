"""A generated stand-in for CelebA: procedurally drawn, varied synthetic faces.

CelebA cannot be fetched from the package registries (docs/data.md); when the
user has not supplied it, the face branch (E3) runs on this stand-in instead. It has
CelebA's on-disk format, so the same ingestion code (:mod:`klvae.data.celeba`) reads both:

* a folder like ``img_align_celeba/`` holding RGB JPEGs of 178x218 pixels (width x
  height) named ``000001.jpg``, ``000002.jpg``, ... (6-digit, 1-based);
* a marker file :data:`MARKER_NAME` in that folder that says it is the stand-in (the
  ingestion copies this into its manifest, and every face figure then shows a banner);
* optionally a ``list_eval_partition.txt`` in CelebA's format (``000001.jpg 0``; 0/1/2 =
  train/valid/test in CelebA's proportions 162,770 / 19,867 / 19,962).

What varies from face to face (all drawn with Pillow at 2x and box-downsampled, i.e.
anti-aliased): head shape (superellipse exponent, jaw taper) and size, skin tone (light
to dark, shading side), hair style (bald, short, long, fringe, curly, bun) and colour,
eye shape, spacing, iris colour and gaze, brows, nose, mouth width/smile/open mouth,
optional beard, glasses and blush, clothing colour, pose (translation, in-plane roll and
a small yaw shift of the features), exposure and colour cast, and a textured coloured
background (smooth colour field, gradient, blurred blobs, grain).

Geometry follows CelebA's aligned images: eyes near y = 111 px, x = 69 and 108 px, mouth
near y = 152 px, chin near y = 180 px, hair from about y = 45 px. The post's crop box
``(left=0, top=40, right=178, bottom=218)`` (post IX) therefore keeps the whole face.

Determinism: image ``i`` is drawn from ``numpy.random.default_rng(SeedSequence([seed,
i]))`` only, so files are bitwise identical on rerun and independent of ``threads``
(given the same Pillow/libjpeg build).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#: CelebA's aligned image size, (width, height) in pixels.
WIDTH, HEIGHT = 178, 218
#: Name of the marker file written into a stand-in folder.
MARKER_NAME = "STANDIN_NOT_CELEBA.json"
#: Version of the drawing code; part of the marker so a changed generator is visible.
GENERATOR_VERSION = 1
#: CelebA's official partition sizes (train, valid, test), for the optional partition file.
CELEBA_PARTITION_SIZES = (162_770, 19_867, 19_962)
_SS = 2  # supersampling factor of the drawing canvas

_SKIN_LIGHT = np.array([255, 226, 200], float)
_SKIN_MID = np.array([214, 160, 118], float)
_SKIN_DARK = np.array([92, 58, 40], float)
_HAIR = np.array([[22, 18, 16], [50, 34, 24], [92, 60, 36], [140, 82, 40], [196, 152, 86],
                  [226, 200, 140], [150, 146, 142], [210, 208, 204], [120, 40, 24]], float)
_HAIR_P = np.array([0.22, 0.22, 0.16, 0.08, 0.1, 0.06, 0.07, 0.03, 0.06])
_IRIS = np.array([[70, 42, 22], [40, 26, 16], [70, 110, 160], [80, 120, 80], [110, 110, 110]], float)


def _mix(a, b, t):
    return np.asarray(a, float) * (1.0 - t) + np.asarray(b, float) * t


def _hsv(h, s, v):
    """HSV in [0, 1] -> RGB float array in [0, 255]."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return 255.0 * (v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def _rgb(c):
    c = np.clip(np.rint(c), 0, 255).astype(int)
    return (int(c[0]), int(c[1]), int(c[2]))


class _Face:
    """Drawing helper: local face coordinates (1x px, relative to the face centre) -> canvas."""

    def __init__(self, draw, cx, cy, roll):
        self.draw, self.cx, self.cy = draw, cx, cy
        self.c, self.s = math.cos(roll), math.sin(roll)

    def pts(self, xs, ys):
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        X = (self.cx + self.c * xs - self.s * ys) * _SS
        Y = (self.cy + self.s * xs + self.c * ys) * _SS
        return list(zip(X.tolist(), Y.tolist(), strict=True))

    def ellipse(self, x, y, rx, ry, fill, rot=0.0, n=28, outline=None, width=0):
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        ex, ey = rx * np.cos(t), ry * np.sin(t)
        cr, sr = math.cos(rot), math.sin(rot)
        self.draw.polygon(self.pts(x + cr * ex - sr * ey, y + sr * ex + cr * ey), fill=fill,
                          outline=outline, width=int(round(width * _SS)) if outline is not None else 0)

    def polygon(self, xs, ys, fill):
        self.draw.polygon(self.pts(xs, ys), fill=fill)

    def line(self, xs, ys, fill, width):
        self.draw.line(self.pts(xs, ys), fill=fill, width=max(1, int(round(width * _SS))), joint="curve")


def _background(rng) -> Image.Image:
    """Textured, coloured background (RGB), built at 1x and upscaled to the canvas."""
    gh, gw = rng.integers(3, 8), rng.integers(3, 7)
    base = _hsv(rng.uniform(0, 1), 0.75 * rng.beta(1.3, 2.5), rng.uniform(0.12, 0.95))
    field = base + rng.normal(0, rng.uniform(8, 40), (gh, gw, 3))
    small = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    bg = small.resize((WIDTH, HEIGHT), Image.BICUBIC)
    d = ImageDraw.Draw(bg)
    for _ in range(rng.integers(0, 6)):  # blobs / objects behind the person
        col = _rgb(_mix(base, rng.uniform(0, 255, 3), rng.uniform(0.15, 0.5)))
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        rx, ry = rng.uniform(8, 50), rng.uniform(8, 50)
        if rng.random() < 0.5:
            d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=col)
        else:
            d.rectangle([x - rx, y - ry, x + rx, y + ry], fill=col)
    if rng.random() < 0.2:  # stripes (curtains, walls)
        col = _rgb(_mix(base, rng.uniform(0, 255, 3), 0.25))
        step = rng.uniform(8, 24)
        for x in np.arange(rng.uniform(0, step), WIDTH, step):
            d.rectangle([x, 0, x + step * 0.4, HEIGHT], fill=col)
    bg = bg.filter(ImageFilter.BoxBlur(rng.uniform(1, 6)))
    return bg.resize((WIDTH * _SS, HEIGHT * _SS), Image.BILINEAR)


def _draw_mouth(f: _Face, rng, skin, b: float, fx: float) -> None:
    """Lips at a random width and smile, open (teeth showing) or closed."""
    my = 0.53 * b + rng.uniform(-3, 3)
    mw = rng.uniform(12, 19)
    smile = rng.uniform(-1.5, 6)
    lip = _mix(skin, [175, 60, 70], rng.uniform(0.3, 0.65))
    mt = np.linspace(-1, 1, 15)
    upper = my - 2.0 - smile * (1 - mt ** 2) * 0.3 + smile * 0.3
    lower = my + rng.uniform(2.5, 5) + smile * (1 - mt ** 2) - smile * 0.3 + 1
    f.polygon(np.concatenate([mt * mw, (mt * mw)[::-1]]) + fx, np.concatenate([upper, lower[::-1]]), _rgb(lip))
    if rng.random() < 0.45:  # open mouth: teeth
        inner_l = my + smile * (1 - mt ** 2) * 0.6 - smile * 0.2 + 1.5
        f.polygon(np.concatenate([mt * mw * 0.8, (mt * mw * 0.8)[::-1]]) + fx,
                  np.concatenate([np.full(15, my - 0.8), inner_l[::-1]]), _rgb([238, 234, 225]))
    else:
        f.line(mt * mw + fx, my + smile * (1 - mt ** 2) * 0.4 - smile * 0.15, _rgb(lip * 0.6), 1.0)


def _draw_eyes(f: _Face, rng, ey: float, yaw: float, fx: float, shade, hair) -> tuple[float, float, float]:
    """Eyes (white, iris, pupil, highlight, lid) and brows; returns ``(eye spacing, eye x radius, eye y radius)``."""
    es = rng.uniform(17, 22)
    erx, ery = rng.uniform(7, 10), rng.uniform(3.4, 5.2)
    iris = _IRIS[rng.integers(len(_IRIS))] + rng.normal(0, 8, 3)
    gaze = rng.uniform(-2, 2)
    tilt = math.radians(rng.uniform(-8, 8))
    brow_y, brow_w = ey - rng.uniform(9, 14), rng.uniform(1.6, 3.8)
    brow_lift = rng.uniform(-2, 3)
    for side in (-1, 1):
        scale = 1 - 0.12 * yaw * side
        x0 = side * es * scale + fx
        f.ellipse(x0, ey, erx * scale, ery, _rgb([245, 245, 240]), rot=side * tilt)
        ir = min(ery * 0.98, rng.uniform(3.0, 4.2))
        f.ellipse(x0 + gaze, ey, ir, ir, _rgb(iris))
        f.ellipse(x0 + gaze, ey, ir * 0.45, ir * 0.45, _rgb([15, 12, 12]))
        f.ellipse(x0 + gaze + 1, ey - 1, 0.8, 0.8, _rgb([255, 255, 255]))
        lid = np.linspace(-1, 1, 9)
        f.line(x0 + lid * erx * scale, ey - ery * np.sqrt(1 - lid ** 2 * 0.9) + side * lid * erx * math.sin(tilt),
               _rgb(shade * 0.5), 1.0)
        bx = np.linspace(-1, 1, 7)
        f.line(x0 + bx * erx * 1.3 * scale, brow_y - brow_lift * (1 - bx ** 2) + side * bx * rng.uniform(-1.5, 1.5),
               _rgb(hair * 0.8), brow_w)
    return es, erx, ery


def _draw_hair_top(f: _Face, rng, hair, hair_style, t, hx, hy, a: float, b: float) -> None:
    """Hair on top of the head (hairline, curls or bun by ``hair_style``); none on some short-haired heads."""
    if hair_style != 0 or rng.random() < 0.5:
        hair_c = _rgb(hair)
        top = (t > math.pi) & (t < 2 * math.pi)
        hl = rng.uniform(0.58, 0.75) * b  # hairline height above the centre
        grow = rng.uniform(1.03, 1.12) if hair_style != 0 else 1.01
        ox, oy = hx[top] * grow * 1.02, hy[top] * grow - (rng.uniform(2, 10) if hair_style in (1, 2, 3) else 1)
        line_x = np.linspace(a * 0.98, -a * 0.98, 15)
        dip = rng.uniform(-0.5, 0.5) * a
        depth = hl - (rng.uniform(0.1, 0.3) * b if hair_style == 3 else 0)
        line_y = -depth + 6 * (line_x / a) ** 2 * rng.uniform(0, 1) + 4 * np.exp(-((line_x - dip) / 8) ** 2)
        if hair_style == 0:
            line_y = line_y - 0.2 * b
        # outer arc left -> right over the top, then the hairline right -> left
        f.polygon(np.concatenate([ox, line_x]), np.concatenate([oy, line_y]), hair_c)
        if hair_style == 4:  # curls / volume
            for _ in range(14):
                ang = rng.uniform(math.pi * 1.0, math.pi * 2.0)
                r = rng.uniform(0.95, 1.12)
                f.ellipse(a * r * math.cos(ang), b * r * math.sin(ang) - 2, rng.uniform(8, 14), rng.uniform(8, 14),
                          hair_c)
        if hair_style == 5:  # bun
            f.ellipse(rng.uniform(-8, 8), -b * 1.12, rng.uniform(12, 17), rng.uniform(10, 14), hair_c)


def _draw_glasses(f: _Face, rng, es: float, erx: float, ery: float, ey: float, fx: float) -> None:
    """Glasses round the eyes, on about 12 % of the faces."""
    if rng.random() < 0.12:  # glasses
        gc = _rgb(rng.uniform(0, 80, 3))
        gw = rng.uniform(1.0, 2.0)
        for side in (-1, 1):
            f.ellipse(side * es + fx, ey + 1, erx + 5, ery + 5.5, None, outline=gc, width=gw)
        f.line([-es + erx + 5 + fx, es - erx - 5 + fx], [ey, ey], gc, gw)


def draw_face(seed: int, index: int) -> Image.Image:
    """Draw stand-in face number ``index`` (1-based) of the set with ``seed``.

    Returns:
        RGB ``PIL.Image`` of 178x218 px (width x height).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    img = _background(rng)
    d = ImageDraw.Draw(img)

    # pose: translation, roll, a yaw shift of the features; head size and shape
    cx = 89 + float(np.clip(rng.normal(0, 3.5), -9, 9))
    cy = 118 + float(np.clip(rng.normal(0, 3.0), -8, 8))
    roll = math.radians(float(np.clip(rng.normal(0, 5), -12, 12)))
    yaw = float(np.clip(rng.normal(0, 0.35), -0.8, 0.8))
    a, b = rng.uniform(39, 48), rng.uniform(60, 69)
    f = _Face(d, cx, cy, roll)

    t_skin = rng.beta(1.4, 1.6)
    skin = _mix(_SKIN_LIGHT, _SKIN_MID, t_skin * 2) if t_skin < 0.5 else _mix(_SKIN_MID, _SKIN_DARK, t_skin * 2 - 1)
    skin = skin + rng.normal(0, 6, 3)
    shade = skin * rng.uniform(0.72, 0.86)
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * rng.uniform(0.85, 1.15) + rng.normal(0, 6, 3)
    hair_style = rng.choice(6, p=[0.08, 0.3, 0.3, 0.12, 0.1, 0.1])
    cloth = rng.uniform(10, 245, 3)

    # head outline: superellipse with a tapered jaw
    n_exp = rng.uniform(2.0, 3.2)
    taper = rng.uniform(0.05, 0.35)
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    ct, st = np.cos(t), np.sin(t)
    hx = a * np.sign(ct) * np.abs(ct) ** (2 / n_exp) * (1 - taper * np.clip(st, 0, None) ** 2)
    hy = b * np.sign(st) * np.abs(st) ** (2 / n_exp)

    # long hair behind the head
    if hair_style == 2:
        w, low = a * rng.uniform(1.2, 1.45), b * rng.uniform(1.0, 1.6)
        f.polygon([-w, -w * 0.9, 0, w * 0.9, w, w * 0.8, -w * 0.8],
                  [low, -b * 0.6, -b * 1.22, -b * 0.6, low, low + 12, low + 12], _rgb(hair * 0.85))
    # shoulders and neck
    sh_y = cy + b + rng.uniform(12, 24)
    d.ellipse([(cx - rng.uniform(70, 100)) * _SS, sh_y * _SS, (cx + rng.uniform(70, 100)) * _SS,
               (sh_y + 120) * _SS], fill=_rgb(cloth))
    nw = a * rng.uniform(0.45, 0.62)
    f.polygon([-nw, nw, nw * 1.1, -nw * 1.1], [b * 0.5, b * 0.5, sh_y - cy + 10, sh_y - cy + 10], _rgb(shade))
    # ears
    ey = -0.08 * b + rng.uniform(-3, 3)
    for side in (-1, 1):
        f.ellipse(side * a * 0.96 + yaw * 3, ey + 10, rng.uniform(5, 7.5), rng.uniform(10, 13), _rgb(shade))
    # head: shade side, then the lit face
    f.polygon(hx, hy, _rgb(shade))
    light = rng.choice([-1, 1]) * rng.uniform(2, 7)
    f.polygon(hx * 0.94 + light, hy * 0.97 - 1, _rgb(skin))
    if rng.random() < 0.3:  # blush
        for side in (-1, 1):
            f.ellipse(side * a * 0.55 + yaw * 6, 0.2 * b, 9, 6, _rgb(_mix(skin, [220, 90, 90], 0.18)))
    if rng.random() < 0.15:  # beard
        bt = np.linspace(0.1, math.pi - 0.1, 24)
        f.polygon(np.concatenate([hx[(t > 0.15) & (t < math.pi - 0.15)] * 0.98, (a * 0.55 * np.cos(bt))[::-1]]),
                  np.concatenate([hy[(t > 0.15) & (t < math.pi - 0.15)] * 0.98, (0.4 * b + 8 * np.sin(bt))[::-1]]),
                  _rgb(hair * 0.8))

    fx = yaw * a * 0.22  # feature shift for the yaw
    # nose
    ny = 0.26 * b + rng.uniform(-2, 3)
    nose_col = _rgb(skin * 0.8)
    f.line([fx * 1.2 + light * 0.3, fx * 1.4 + light * 0.3], [ey + 8, ny - 2], _rgb(skin * 0.9), 1.2)
    for side in (-1, 1):
        f.ellipse(fx * 1.4 + side * rng.uniform(3.5, 5.5), ny, 2.6, 1.6, nose_col)
    _draw_mouth(f, rng, skin, b, fx)
    es, erx, ery = _draw_eyes(f, rng, ey, yaw, fx, shade, hair)
    _draw_hair_top(f, rng, hair, hair_style, t, hx, hy, a, b)
    _draw_glasses(f, rng, es, erx, ery, ey, fx)

    img = img.reduce(_SS)
    # exposure, colour cast, grain
    arr = np.asarray(img, np.float32)
    arr = arr * rng.uniform(0.85, 1.12) * (1 + rng.normal(0, 0.04, 3)).astype(np.float32)
    arr = arr + rng.normal(0, rng.uniform(1, 4), arr.shape[:2])[..., None].astype(np.float32)
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def _write_range(args):
    folder, seed, start, stop, quality = args
    for i in range(start, stop):
        draw_face(seed, i).save(os.path.join(folder, f"{i:06d}.jpg"), format="JPEG", quality=quality)
    return stop - start


def partition_codes(n_images: int) -> np.ndarray:
    """CelebA-style partition codes for ``n_images`` files in file order (0 train, 1 valid, 2 test).

    The proportions are CelebA's (162,770 / 19,867 / 19,962 of 202,599), contiguous by
    file number as in CelebA's own ``list_eval_partition.txt``.

    Returns:
        int8 array ``(n_images,)``.
    """
    total = sum(CELEBA_PARTITION_SIZES)
    n_train = int(round(n_images * CELEBA_PARTITION_SIZES[0] / total))
    n_valid = int(round(n_images * CELEBA_PARTITION_SIZES[1] / total))
    codes = np.full(n_images, 2, np.int8)
    codes[:n_train] = 0
    codes[n_train:n_train + n_valid] = 1
    return codes


def generate_standin(folder: str | Path, n_images: int, seed: int = 0, threads: int = 1,
                     partition_file: str | Path | None = None, quality: int = 90) -> dict:
    """Write a CelebA-format folder of ``n_images`` synthetic faces (the CelebA stand-in).

    Args:
        folder: output folder (like CelebA's ``img_align_celeba/``); it is built under a
            temporary name and renamed into place when complete. An existing folder is
            replaced only if it carries the stand-in marker.
        n_images: number of images, ``>= 1``; files ``000001.jpg`` .. ``{n:06d}.jpg``.
        seed: integer seed; the files are a pure function of (seed, index).
        threads: worker processes.
        partition_file: optional path of a ``list_eval_partition.txt`` to write in CelebA's
            format (see :func:`partition_codes`).
        quality: JPEG quality of the files.

    Returns:
        The marker record (dict), also written as JSON to ``folder/`` :data:`MARKER_NAME`.

    Raises:
        ValueError: ``n_images`` out of range (CelebA names have 6 digits).
        FileExistsError: ``folder`` exists and is not a stand-in folder (never deleted).
    """
    n_images = int(n_images)
    if not 1 <= n_images <= 999_999:
        raise ValueError(f"n_images must be in 1..999999, got {n_images}")
    folder = Path(folder)
    if folder.exists() and not (folder / MARKER_NAME).is_file():
        raise FileExistsError(f"{folder} exists and is not a generated stand-in (no {MARKER_NAME}); "
                              "refusing to overwrite it. Choose another path or remove it yourself.")
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    chunk = max(1, min(256, n_images // (4 * max(1, threads)) or 1))
    jobs = [(str(tmp), int(seed), s, min(s + chunk, n_images + 1), int(quality))
            for s in range(1, n_images + 1, chunk)]
    if threads > 1 and len(jobs) > 1:
        with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(int(threads)) as pool:
            done = sum(pool.imap_unordered(_write_range, jobs))
    else:
        done = sum(map(_write_range, jobs))
    seconds = time.perf_counter() - start
    record = {
        "standin": True, "dataset": "synthetic CelebA stand-in (NOT CelebA)",
        "generator": "klvae.data.standin.generate_standin", "generator_version": GENERATOR_VERSION,
        "seed": int(seed), "n_images": done, "image_size_wh": [WIDTH, HEIGHT], "jpeg_quality": int(quality),
        "threads": int(threads), "seconds": round(seconds, 3),
        "images_per_second": round(done / seconds, 1) if seconds > 0 else None,
    }
    (tmp / MARKER_NAME).write_text(json.dumps(record, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(folder)
    if partition_file is not None:
        partition_file = Path(partition_file)
        partition_file.parent.mkdir(parents=True, exist_ok=True)
        codes = partition_codes(n_images)
        text = "".join(f"{i:06d}.jpg {c}\n" for i, c in enumerate(codes, start=1))
        ptmp = partition_file.with_name(partition_file.name + ".tmp")
        ptmp.write_text(text)
        ptmp.replace(partition_file)
    print(f"[standin] {done:,} synthetic faces in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f} img/s, "
          f"{threads} process(es)) -> {folder}", flush=True)
    return record


__all__ = ["generate_standin", "draw_face", "partition_codes", "MARKER_NAME", "WIDTH", "HEIGHT"]
