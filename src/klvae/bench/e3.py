"""E3 face-pipeline benchmarks (the report's timing tables; post IX), each writing one CSV.

* :func:`preprocessing_benchmark` -- crop + LANCZOS resize rate in images/s per process,
  against the post's "about 240 secs" for 200,000 images on one core (833 images/s; the
  post also wrote q95 JPEGs, we write uint8 rows). Target: >= 4x per core.
* :func:`memory_benchmark` -- peak RSS of a few training steps fed by (a) the streamed
  uint8 memmap pipeline (:class:`klvae.data.stream.ImageBatches`) and (b) the post's way:
  the whole set as one float32 array in RAM, fed batch by batch. Each runs in its own
  subprocess (clean RSS, ``ru_maxrss``); both are extrapolated to the post's 170,000
  training images (float32: 170,000 x 96 x 96 x 3 x 4 B = 18.8 GB of data). Target: the
  stream's peak <= 25 % of the float32 approach's.
* :func:`pipeline_benchmark` -- images/s the input pipeline delivers alone, versus images/s
  the VAE's training step consumes (median of timed windows, spread shown), per TF thread
  count, each in its own subprocess. Target: input >= 5x the training consumption.

Every CSV row carries the hardware and versions (CPU model, cores, TF threads,
TensorFlow/Keras/NumPy/Pillow/Python). Absolute numbers only mean something on the same
machine; ratios carry.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from klvae import machine
from klvae.io import write_rows
from klvae.reference import POST_N_TRAIN, POST_PREPROCESS_IMAGES, POST_PREPROCESS_SECONDS

#: The post's preprocessing rate: ~240 s for 200,000 images, single-threaded (post IX).
POST_PREPROCESS_RATE = POST_PREPROCESS_IMAGES / POST_PREPROCESS_SECONDS
#: The post's training set size (post IX) and its float32 footprint.
BYTES_PER_IMAGE_UINT8 = 96 * 96 * 3
BYTES_PER_IMAGE_FLOAT32 = 4 * BYTES_PER_IMAGE_UINT8
#: What the stream holds per training image: one int64 index in the epoch's order (8 B) plus
#: bookkeeping; 256 B is a generous bound.
STREAM_BYTES_PER_IMAGE = 256
#: Targets (the brief of E3).
TARGET_PREPROCESS_SPEEDUP = 4.0
TARGET_MEMORY_FRACTION = 0.25
TARGET_INPUT_OVER_TRAIN = 5.0


def system_info(threads: int | None = None) -> dict:
    """CPU model, logical cores, usable cores, TF threads and package versions (strings)."""
    versions = {}
    for mod in ("tensorflow", "jax", "keras", "numpy", "PIL"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = ""
    return {
        "cpu": machine.cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": machine.usable_cores(),
        "tf_threads": "" if threads is None else int(threads),
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "tensorflow": versions["tensorflow"], "jax": versions["jax"], "keras": versions["keras"],
        "numpy": versions["numpy"],
        "pillow": versions["PIL"], "python": platform.python_version(),
        "load_avg_1min": machine.load_average(),
    }


def _row(benchmark, quantity, value, unit, **kw) -> dict:
    return {"benchmark": benchmark, "quantity": quantity, "value": value, "unit": unit, **kw}


# ---------------------------------------------------------------------------------------
# preprocessing
# ---------------------------------------------------------------------------------------
def _stage_rows(source_path, n: int, data_label: str, sysinfo: dict) -> list[dict]:
    """Where one core's preprocessing time goes, per image: reading the bytes, JPEG decoding
    (Pillow ``Image.open(...).load()``) and the post's crop + LANCZOS resize, each timed
    separately on the first ``n`` usable images (median of 3 passes). Their sum bounds the
    per-core rate any Pillow-based implementation of the post's preprocessing can reach."""
    import io
    import zipfile

    from PIL import Image

    from klvae.data.celeba import CROP_BOX, IMAGE_SIZE, OUT_SIZE, locate_images

    src = locate_images(source_path)
    names = [src.names[k] for k in sorted(src.names)][: max(int(n) * 2, int(n) + 10)]
    zf = zipfile.ZipFile(src.path) if src.kind == "zip" else None

    def read(name):
        return zf.read(name) if zf is not None else Path(name).read_bytes()  # folder sources list file paths

    blobs, decoded = [], []
    for name in names:
        b = read(name)
        try:
            im = Image.open(io.BytesIO(b))
            if im.size != IMAGE_SIZE:
                continue
            im.load()
        except Exception:  # noqa: BLE001 -- skipped files are not part of the per-image cost
            continue
        blobs.append(b)
        decoded.append(im.convert("RGB"))
        if len(blobs) >= n:
            break
    if not blobs:
        return []

    def timed(fn):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1000.0 * statistics.median(times) / len(blobs)

    ms_read = timed(lambda: [read(nm) for nm in names[: len(blobs)]])
    ms_decode = timed(lambda: [Image.open(io.BytesIO(b)).load() for b in blobs])
    ms_resize = timed(lambda: [im.crop(CROP_BOX).resize(OUT_SIZE, Image.LANCZOS) for im in decoded])
    if zf is not None:
        zf.close()
    common = {"n_images": len(blobs), "processes": 1, "data": data_label, **sysinfo}
    ceiling = 1000.0 / (ms_read + ms_decode + ms_resize)
    return [
        _row("preprocessing", "stage_ms_read_bytes", round(ms_read, 4), "ms/image", **common),
        _row("preprocessing", "stage_ms_jpeg_decode", round(ms_decode, 4), "ms/image", **common),
        _row("preprocessing", "stage_ms_crop_resize_lanczos", round(ms_resize, 4), "ms/image", **common),
        _row("preprocessing", "stage_ceiling_images_per_second_per_core", round(ceiling, 1), "images/s",
             ratio_to_reference=round(ceiling / POST_PREPROCESS_RATE, 3),
             detail="1000 / (read + decode + crop/resize): no Pillow-based loop on this core can be faster", **common),
    ]


def preprocessing_benchmark(source_path: str | Path, csv: str | Path, n_images: int = 2000,
                            threads: int = 1, repeats: int = 2) -> list[dict]:
    """Time :func:`klvae.data.celeba.preprocess` on the first ``n_images`` of ``source_path``.

    Runs with 1 process and with ``threads`` processes (if > 1), ``repeats`` times each,
    and keeps the best (least disturbed) run. The rate counts files through the decode /
    crop / resize / write loop (the manifest's ``seconds_decode_resize``); hashing the
    outputs and the draft check are excluded, as the post's 240 s excluded them too.

    Writes ``csv`` with rows: images/s, images/s per process, speed-up per core over
    the seed (833 images/s), the target (4x) and whether it is met, seconds extrapolated
    to 200,000 images, and the draft-check result.
    """
    from klvae.data.celeba import preprocess

    sysinfo = system_info()
    rows = []
    procs = [1] + ([int(threads)] if int(threads) > 1 else [])
    with tempfile.TemporaryDirectory(prefix="klvae-bench-") as tmp:
        for p in procs:
            best = None
            for _ in range(int(repeats)):
                rec = preprocess(source_path, f"{tmp}/tr.npy", f"{tmp}/te.npy", f"{tmp}/m.json",
                                 n_train=int(n_images), n_test=0, split="post", threads=p)
                t = rec["timing"]
                if best is None or t["images_per_second"] > best["timing"]["images_per_second"]:
                    best = rec
            t = best["timing"]
            per_core = t["images_per_second_per_process"]
            speedup = per_core / POST_PREPROCESS_RATE
            common = {"n_images": best["files_examined"], "processes": p, "data": best["data_label"], **sysinfo}
            rows += [
                _row("preprocessing", "images_per_second", t["images_per_second"], "images/s", **common),
                _row("preprocessing", "images_per_second_per_process", per_core, "images/s",
                     reference=round(POST_PREPROCESS_RATE, 1),
                     reference_source="post IX: ~240 s for 200,000 images, 1 thread (incl. q95 JPEG writes)",
                     ratio_to_reference=round(speedup, 3), target=f">= {TARGET_PREPROCESS_SPEEDUP:g}x per core",
                     meets_target=speedup >= TARGET_PREPROCESS_SPEEDUP, **common),
                _row("preprocessing", "seconds_for_200000_images",
                     round(POST_PREPROCESS_IMAGES / t["images_per_second"], 1),
                     "s", reference=POST_PREPROCESS_SECONDS, reference_source="post IX", **common),
            ]
        rows += _stage_rows(source_path, min(int(n_images), 500), best["data_label"], sysinfo)
        dc = best["draft_check"]
        rows.append(_row("preprocessing", "draft_decode_used", dc.get("used"), "bool",
                         detail=json.dumps({k: dc.get(k) for k in ("mean_abs_diff", "psnr_db", "max_abs_diff",
                                                                   "tolerance", "n_images")}),
                         **{"n_images": dc.get("n_images"), "processes": "", "data": best["data_label"], **sysinfo}))
    write_rows(csv, rows)
    return rows


# ---------------------------------------------------------------------------------------
# memory (each mode in a clean subprocess)
# ---------------------------------------------------------------------------------------
def _child_memory(mode: str, train_npy: str, n_images: int, batch_size: int, steps: int, threads: int) -> dict:
    """Run in a fresh interpreter: build the face VAE, train ``steps`` steps fed by ``mode``, report peak RSS."""
    from klvae.seeding import set_global_seed

    set_global_seed(0, threads)
    import keras

    from klvae.models.faces import build_face_vae

    model = build_face_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    mm = np.load(train_npy, mmap_mode="r")[:n_images]
    if mode == "stream":
        from klvae.data.stream import ImageBatches

        ds = ImageBatches(mm, batch_size, shuffle=True, seed=0, epochs=int(steps) // max(1, len(mm) // batch_size) + 2)
    elif mode == "float32":
        # the post's way (post IX, cells 4-5 and 9): one float32 array of all images scaled
        # to [0, 1] in RAM (scaled in place here, which avoids the post's temporary second
        # copy and so favours this approach), fed in shuffled batches like ImageDataGenerator.flow
        x = np.empty(mm.shape, np.float32)
        for i in range(0, len(mm), 1024):
            x[i:i + 1024] = mm[i:i + 1024]
        x /= 255.0
        order = np.random.default_rng(0).permutation(len(x))

        class Float32Batches(keras.utils.PyDataset):
            """Shuffled batches of the in-RAM float32 array (ImageDataGenerator.flow's role)."""

            def __len__(self):
                return int(steps)

            def __getitem__(self, i):
                j = (i * batch_size) % len(x)
                return x[np.sort(order[j:j + batch_size])]

        ds = Float32Batches()
    else:
        raise ValueError(mode)
    model.fit(ds, steps_per_epoch=int(steps), epochs=1, verbose=0)
    with open("/proc/self/status") as f:
        status = {ln.split(":")[0]: ln.split(":")[1].strip() for ln in f if ":" in ln}
    return {"mode": mode, "n_images": int(len(mm)),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "rss_after_model_bytes": rss_model, "vm_hwm": status.get("VmHWM", ""), "steps": int(steps)}


def _run_child(func: str, **kwargs) -> dict:
    code = ("import json, sys; from klvae.bench import e3 as b; "
            f"print('@@RESULT@@' + json.dumps(b.{func}(**json.loads(sys.argv[1]))))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]),
                                                                   os.environ.get("PYTHONPATH", "")] if p),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"benchmark child {func}({kwargs}) failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


def memory_benchmark(train_npy: str | Path, csv: str | Path, n_images: int = 5000, batch_size: int = 128,
                     steps: int = 6, threads: int = 1) -> list[dict]:
    """Peak RSS of streamed-uint8 versus in-RAM-float32 training on the same ``n_images``.

    Each mode runs ``steps`` training steps of the face VAE in its own subprocess. The
    extrapolation to N = 170,000 assumes what each design implies: the float32 approach
    holds N x 110,592 B of data on top of the fixed overhead (measured peak minus the
    measured data size); the stream holds at most :data:`STREAM_BYTES_PER_IMAGE` per image
    (the shuffle buffer's int64 index tensors) on top of its measured peak.

    Writes ``csv``: measured peaks, the fixed overhead, extrapolated peaks at 170,000
    images, the post's 18.8 GB data figure, the stream/float32 ratio and the <= 25 % target.
    """
    sysinfo = system_info(threads)
    res = {m: _run_child("_child_memory", mode=m, train_npy=str(train_npy), n_images=int(n_images),
                         batch_size=int(batch_size), steps=int(steps), threads=int(threads))
           for m in ("stream", "float32")}
    n = res["stream"]["n_images"]
    s_peak, f_peak = res["stream"]["peak_rss_bytes"], res["float32"]["peak_rss_bytes"]
    f_overhead = f_peak - n * BYTES_PER_IMAGE_FLOAT32
    s_170k = s_peak + (POST_N_TRAIN - n) * STREAM_BYTES_PER_IMAGE
    f_170k = f_overhead + POST_N_TRAIN * BYTES_PER_IMAGE_FLOAT32
    common = {"n_images": n, "batch_size": int(batch_size), "steps": int(steps), **sysinfo}
    gb = 1e9
    rows = [
        _row("memory", "peak_rss_stream_uint8_memmap", round(s_peak / gb, 3), "GB", **common),
        _row("memory", "peak_rss_float32_in_ram", round(f_peak / gb, 3), "GB", **common),
        _row("memory", "measured_ratio_stream_over_float32", round(s_peak / f_peak, 4), "ratio", **common),
        _row("memory", "rss_after_building_model", round(res["stream"]["rss_after_model_bytes"] / gb, 3), "GB",
             **common),
        _row("memory", "float32_fixed_overhead", round(f_overhead / gb, 3), "GB", **common),
        _row("memory", "float32_data_at_170000", round(POST_N_TRAIN * BYTES_PER_IMAGE_FLOAT32 / gb, 2), "GB",
             reference=18.8, reference_source="post IX (170,000 x 96x96x3 float32)", **common),
        _row("memory", "peak_rss_stream_at_170000_extrapolated", round(s_170k / gb, 3), "GB", **common),
        _row("memory", "peak_rss_float32_at_170000_extrapolated", round(f_170k / gb, 3), "GB", **common),
        _row("memory", "ratio_stream_over_float32_at_170000", round(s_170k / f_170k, 4), "ratio",
             target=f"<= {TARGET_MEMORY_FRACTION:g}", meets_target=s_170k / f_170k <= TARGET_MEMORY_FRACTION,
             **common),
        _row("memory", "uint8_npy_on_disk_at_170000", round(POST_N_TRAIN * BYTES_PER_IMAGE_UINT8 / gb, 2), "GB",
             detail="read by pread; the OS page cache for it is not in the process's RSS", **common),
    ]
    write_rows(csv, rows)
    return rows


# ---------------------------------------------------------------------------------------
# input pipeline versus training step (each thread count in a clean subprocess)
# ---------------------------------------------------------------------------------------
def _child_pipeline(train_npy: str, batch_size: int, threads: int, input_batches: int, windows: int,
                    steps_per_window: int) -> dict:
    """Fresh interpreter: images/s of the memmap pipeline alone; s/step of the VAE's train step."""
    from klvae.seeding import set_global_seed

    set_global_seed(0, threads)
    import keras

    from klvae.data.stream import ImageBatches
    from klvae.models.faces import build_face_vae

    mm = np.load(train_npy, mmap_mode="r")
    n_needed = 3 + 3 * int(input_batches) + 1
    ds = ImageBatches(mm, batch_size, shuffle=True, seed=0,
                      epochs=-(-max(n_needed, int(steps_per_window)) // max(1, -(-len(mm) // batch_size))) + 1)
    in_rates = []
    i = 3
    for _ in range(3):
        t = time.perf_counter()
        n = 0
        for _ in range(int(input_batches)):
            n += int(ds[i].shape[0])
            i += 1
        in_rates.append(n / (time.perf_counter() - t))
    model = build_face_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    batch = ds[i]

    class SameBatch(keras.utils.PyDataset):
        """Compute only: one batch held in memory, served ``steps_per_window`` times."""

        def __len__(self):
            return max(3, int(steps_per_window))

        def __getitem__(self, _):
            return batch

    fixed = SameBatch()
    model.fit(fixed, steps_per_epoch=3, epochs=1, verbose=0)  # trace + warm-up
    s_per_step = []
    for _ in range(int(windows)):
        t = time.perf_counter()
        model.fit(fixed, steps_per_epoch=int(steps_per_window), epochs=1, verbose=0)
        s_per_step.append((time.perf_counter() - t) / int(steps_per_window))
    streamed = []
    for _ in range(max(1, int(windows) // 2)):
        t = time.perf_counter()
        model.fit(ds, steps_per_epoch=int(steps_per_window), epochs=1, verbose=0)
        streamed.append((time.perf_counter() - t) / int(steps_per_window))
    return {"threads": int(threads), "input_images_per_s": in_rates, "s_per_step": s_per_step,
            "s_per_step_streamed": streamed, "batch_size": int(batch_size), "n_available": int(len(mm))}


def pipeline_benchmark(train_npy: str | Path, csv: str | Path, batch_size: int = 128,
                       threads_list=(1, 2), input_batches: int = 40, windows: int = 5,
                       steps_per_window: int = 3) -> list[dict]:
    """Input-pipeline throughput versus the training step's consumption, per backend thread count.

    For each ``threads`` in ``threads_list`` (a subprocess each): the memmap input pipeline
    (:class:`klvae.data.stream.ImageBatches`) alone (3 windows of ``input_batches`` batches;
    median), then the face VAE's train step on a batch held in memory (``windows`` windows of
    ``steps_per_window`` steps after a warm-up; median and min-max spread), then
    ``windows // 2`` windows fed by the pipeline itself. Writes ``csv``.
    """
    rows = []
    for th in threads_list:
        r = _run_child("_child_pipeline", train_npy=str(train_npy), batch_size=int(batch_size), threads=int(th),
                       input_batches=int(input_batches), windows=int(windows), steps_per_window=int(steps_per_window))
        sysinfo = system_info(th)
        med_in = statistics.median(r["input_images_per_s"])
        med_step = statistics.median(r["s_per_step"])
        consume = batch_size / med_step
        common = {"batch_size": int(batch_size), "n_images": r["n_available"], **sysinfo}
        rows += [
            _row("pipeline", "input_images_per_second", round(med_in, 1), "images/s",
                 spread=f"{min(r['input_images_per_s']):.0f}-{max(r['input_images_per_s']):.0f}", **common),
            _row("pipeline", "train_step_ms", round(1000 * med_step, 1), "ms/step",
                 spread=f"{1000 * min(r['s_per_step']):.0f}-{1000 * max(r['s_per_step']):.0f}",
                 detail=f"median of {windows} windows x {steps_per_window} steps, compute only", **common),
            _row("pipeline", "train_step_ms_streamed", round(1000 * statistics.median(r["s_per_step_streamed"]), 1),
                 "ms/step",
                 spread=f"{1000 * min(r['s_per_step_streamed']):.0f}-{1000 * max(r['s_per_step_streamed']):.0f}",
                 detail="median of windows fed by the memmap pipeline", **common),
            _row("pipeline", "train_consumption_images_per_second", round(consume, 1), "images/s", **common),
            _row("pipeline", "input_over_consumption", round(med_in / consume, 2), "ratio",
                 target=f">= {TARGET_INPUT_OVER_TRAIN:g}", meets_target=med_in / consume >= TARGET_INPUT_OVER_TRAIN,
                 **common),
            _row("pipeline", "seconds_per_epoch_at_170000", round(med_step * np.ceil(POST_N_TRAIN / batch_size), 0),
                 "s", detail="compute-only step time x 1,329 steps", **common),
        ]
    write_rows(csv, rows)
    return rows


__all__ = ["preprocessing_benchmark", "memory_benchmark", "pipeline_benchmark", "system_info"]
