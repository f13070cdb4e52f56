"""Line charts for the training report (loss curves, eval over training time), drawn with Pillow alone."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLOURS = ((66, 133, 244), (219, 68, 55), (15, 157, 88), (244, 160, 0), (171, 71, 188), (0, 172, 193))
W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 360, 64, 16, 32, 44


def line_chart(series: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *, title: str, xlabel: str,
               ylabel: str, log_y: bool = False) -> Path:
    """One PNG with a line per series (name -> (x, y)), axes with min/max ticks, a legend and a title."""
    from PIL import Image, ImageDraw

    if not series or any(len(x) == 0 or len(x) != len(y) for x, y in series.values()):
        raise ValueError("every series needs matching, non-empty x and y")
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
    if log_y:
        if (ys <= 0).any():
            raise ValueError("a log axis needs positive values")
        ys = np.log10(ys)
    x0, x1 = xs.min(), xs.max() if xs.max() > xs.min() else xs.min() + 1
    y0, y1 = ys.min(), ys.max() if ys.max() > ys.min() else ys.min() + 1
    img = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(img)

    def px(x, y):
        return (LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT), H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM))

    d.rectangle([LEFT, TOP, W - RIGHT, H - BOTTOM], outline=(120, 120, 120))
    d.text((LEFT, 8), title, fill=(0, 0, 0))
    d.text((W // 2 - 3 * len(xlabel), H - 18), xlabel, fill=(0, 0, 0))
    d.text((4, TOP - 14), ylabel + (" (log10)" if log_y else ""), fill=(0, 0, 0))
    for value, y in ((y0, H - BOTTOM), (y1, TOP)):
        d.text((4, y - 6), f"{10 ** value if log_y else value:.3g}", fill=(60, 60, 60))
    for value, x in ((x0, LEFT), (x1, W - RIGHT - 40)):
        d.text((x, H - BOTTOM + 4), f"{value:.4g}", fill=(60, 60, 60))
    for k, (name, (x, y)) in enumerate(series.items()):
        y = np.log10(np.asarray(y, float)) if log_y else np.asarray(y, float)
        colour = COLOURS[k % len(COLOURS)]
        points = [px(a, b) for a, b in zip(np.asarray(x, float), y)]
        if len(points) > 1:
            d.line(points, fill=colour, width=2)
        else:
            d.ellipse([points[0][0] - 3, points[0][1] - 3, points[0][0] + 3, points[0][1] + 3], fill=colour)
        d.text((W - RIGHT - 170, TOP + 6 + 14 * k), name, fill=colour)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over `window` points (shorter at the start)."""
    values = np.asarray(values, float)
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def loss_records(log_path: str | Path, step: str = "total") -> list[dict]:
    """The records of a loss log in step order; a resumed run logs again the steps it redoes after its last
    checkpoint, so each step keeps its last record."""
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{log_path} holds no loss records")
    return sorted({r[step]: r for r in rows}.values(), key=lambda r: r[step])


def loss_curve(log_path: str | Path, png: str | Path, *, window: int = 20) -> Path:
    """The teacher's loss log (`loss.jsonl`) as one smoothed line per phase against training minutes."""
    rows = loss_records(log_path)
    series = {}
    for phase in dict.fromkeys(r["phase"] for r in rows):
        part = [r for r in rows if r["phase"] == phase]
        series[phase] = (np.array([r["seconds"] / 60 for r in part]), smoothed([r["loss"] for r in part], window))
    return line_chart(series, png, title="teacher: flow-matching loss (weighted, smoothed)", xlabel="minutes",
                      ylabel="loss", log_y=True)


def student_loss_curve(log_path: str | Path, png: str | Path, *, window: int = 5) -> Path:
    """A student stage's loss log (`loss.jsonl` of `shotstream train ode|dmd|dmd-long`): each loss it logs and,
    where the log has it, the rollouts' chunk growth (last chunk's spread over the first's), smoothed, against
    training minutes."""
    rows = loss_records(log_path, step="step")
    minutes = np.array([r["seconds"] / 60 for r in rows])
    keys = [key for key in rows[0] if key.endswith("_loss") or key == "x_hat_growth"]
    series = {key: (minutes, smoothed([r[key] for r in rows], window)) for key in keys}
    growth = " and chunk growth" if "x_hat_growth" in keys else ""
    return line_chart(series, png, title=f"student: losses{growth} (smoothed)", xlabel="minutes", ylabel="value",
                      log_y=True)
