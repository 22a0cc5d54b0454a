"""PASCAL VOC on disk: detection (VOC2007) and semantic segmentation (VOC2012), plus smoke generators.

Layouts read (the real ones, from a local root)::

    <root>/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
                            /Annotations/<id>.xml              (PASCAL VOC XML: object/name, difficult, bndbox)
                            /ImageSets/Main/{trainval,test}.txt
    <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
                            /SegmentationClass/<id>.png        (palette PNG: 0 background, 1..20, 255 border)
                            /ImageSets/Segmentation/{train,val}.txt

``root`` may also point at ``VOCdevkit`` or at ``VOC2007`` itself. With ``allow_download`` torchvision's
``VOCDetection`` / ``VOCSegmentation`` fetch the archives first (the official host is often down).

Detection and segmentation data are too large to hold decoded in memory, so these loaders return *indexes*
(:class:`DetectionData`, :class:`SegmentationData`) whose samples are decoded on demand.

Box convention: VOC XML boxes are 1-based inclusive pixel indices. They are stored as continuous
``[xmin − 1, ymin − 1, xmax, ymax]`` (what torchvision's detectors use); an IoU computed on these without
the devkit's "+1" equals the devkit's IoU on the original indices.

Smoke data (``voc-smoke``, ``voc2012-seg-smoke``): :func:`write_voc_detection` / :func:`write_voc_segmentation`
draw simple shapes into JPEGs with XML annotations / palette PNG masks in the very same layout, and the very
same loaders read them back. Those data sets are listed as smoke data by the tasks, so the site says
"not yet run on real data".
"""

from __future__ import annotations

import hashlib
import json
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from bench.zoo.datasets import DATASETS, cache_dir, missing
from bench.spec.schema import NON_NEGATIVE, POSITIVE

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


# -- index types ------------------------------------------------------------------------------------------


@dataclass
class DetSample:
    id: str
    image: str  # path of the JPEG
    boxes: torch.Tensor  # (N, 4) float32, continuous [x1, y1, x2, y2] (see module docstring)
    labels: torch.Tensor  # (N,) int64, 1..C (0 is background)
    difficult: torch.Tensor  # (N,) bool
    size: tuple  # (height, width)


def _pick(items: list, n: int | None, seed: int) -> list:
    if n is None or n >= len(items):
        return list(items)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(items), generator=g)[:n].sort().values
    return [items[i] for i in idx.tolist()]


def read_rgb(path: str) -> torch.Tensor:
    """(3, H, W) uint8."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


@dataclass
class DetectionData:
    name: str
    train: list
    test: list
    classes: tuple
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "DetectionData":
        """The first n of a seeded permutation (the same for every family and run seed), in file order."""
        return DetectionData(
            self.name,
            _pick(self.train, train, seed),
            _pick(self.test, test, seed + 1),
            self.classes,
            self.source,
            dict(self.meta),
        )

    @staticmethod
    def image(sample: DetSample) -> torch.Tensor:
        return read_rgb(sample.image)


@dataclass
class SegSample:
    id: str
    image: str
    mask: str


@dataclass
class SegmentationData:
    """Image/mask pairs. ``lut`` maps stored mask values (0..255) to train ids (``ignore_index`` = not scored)."""

    name: str
    train: list
    test: list
    classes: tuple
    lut: torch.Tensor  # (256,) int64
    ignore_index: int = 255
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "SegmentationData":
        return SegmentationData(
            self.name,
            _pick(self.train, train, seed),
            _pick(self.test, test, seed + 1),
            self.classes,
            self.lut,
            self.ignore_index,
            self.source,
            dict(self.meta),
        )

    def load(self, sample: SegSample) -> tuple[torch.Tensor, torch.Tensor]:
        """(3, H, W) uint8 image and (H, W) int64 train-id mask."""
        with Image.open(sample.mask) as im:
            raw = np.asarray(im if im.mode in ("P", "L", "I", "I;16") else im.convert("L"))
        mask = self.lut[torch.from_numpy(raw.astype(np.int64)).clamp_(0, 255)]
        return read_rgb(sample.image), mask


# -- VOC2007 detection ------------------------------------------------------------------------------------


def find_voc_dir(root: Path | None, year: str) -> Path | None:
    if root is None:
        return None
    for cand in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}", root):
        if (cand / "JPEGImages").is_dir():
            return cand
    return None


def parse_voc_xml(path: Path, classes=VOC_CLASSES) -> dict:
    """One VOC annotation file → size, boxes (continuous), labels (1-based class index), difficult flags."""
    tree = ET.parse(path).getroot()
    size = tree.find("size")
    h = int(float(size.find("height").text)) if size is not None else 0
    w = int(float(size.find("width").text)) if size is not None else 0
    boxes, labels, difficult = [], [], []
    for obj in tree.findall("object"):
        name = obj.find("name").text.strip()
        if name not in classes:
            continue
        bb = obj.find("bndbox")
        x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        labels.append(classes.index(name) + 1)
        diff = obj.find("difficult")
        difficult.append(bool(int(diff.text)) if diff is not None and diff.text else False)
    return {
        "size": (h, w),
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
    }


def _ids(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def load_voc_detection(
    root: Path | None, name: str, year: str = "2007", train_split: str = "trainval", test_split: str = "test"
) -> DetectionData:
    base = find_voc_dir(root, year)
    expected = (
        f"VOCdevkit/VOC{year}/{{JPEGImages,Annotations,ImageSets/Main/{train_split}.txt,"
        f"ImageSets/Main/{test_split}.txt}}"
    )
    if base is None:
        raise missing(name, root, expected)
    splits = {}
    for split in (train_split, test_split):
        f = base / "ImageSets" / "Main" / f"{split}.txt"
        if not f.is_file():
            raise missing(name, root, expected, hint=f" ({f} is missing)")
        samples = []
        for i in _ids(f):
            ann = parse_voc_xml(base / "Annotations" / f"{i}.xml")
            samples.append(
                DetSample(
                    i, str(base / "JPEGImages" / f"{i}.jpg"), ann["boxes"], ann["labels"], ann["difficult"], ann["size"]
                )
            )
        splits[split] = samples
    return DetectionData(
        name,
        splits[train_split],
        splits[test_split],
        VOC_CLASSES,
        source=f"PASCAL VOC{year} layout at {base}",
        meta={"year": year, "train_split": train_split, "test_split": test_split},
    )


@DATASETS.register(
    "voc2007", document="000 §5.4", summary="PASCAL VOC 2007 detection (trainval → test), real VOCdevkit layout."
)
def voc2007(root, allow_download, *, train_split="trainval", test_split="test"):
    if find_voc_dir(root, "2007") is None and allow_download and root is not None:
        from torchvision.datasets import VOCDetection

        VOCDetection(str(root), year="2007", image_set="trainval", download=True)
        VOCDetection(str(root), year="2007-test", image_set="test", download=True)
    return load_voc_detection(root, "voc2007", "2007", train_split, test_split)


# -- VOC2012 segmentation ----------------------------------------------------------------------------------


def voc_palette() -> list[int]:
    """The VOC colour map (bit-interleaved label → RGB), as a flat 768-entry PIL palette."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def load_voc_segmentation(
    root: Path | None, name: str, year: str = "2012", train_split: str = "train", test_split: str = "val"
) -> SegmentationData:
    base = find_voc_dir(root, year)
    expected = (
        f"VOCdevkit/VOC{year}/{{JPEGImages,SegmentationClass,ImageSets/Segmentation/{train_split}.txt,"
        f"ImageSets/Segmentation/{test_split}.txt}}"
    )
    if base is None or not (base / "SegmentationClass").is_dir():
        raise missing(name, root, expected)
    splits = {}
    for split in (train_split, test_split):
        f = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not f.is_file():
            raise missing(name, root, expected, hint=f" ({f} is missing)")
        splits[split] = [
            SegSample(i, str(base / "JPEGImages" / f"{i}.jpg"), str(base / "SegmentationClass" / f"{i}.png"))
            for i in _ids(f)
        ]
    lut = torch.full((256,), 255, dtype=torch.int64)
    lut[:21] = torch.arange(21)
    return SegmentationData(
        name,
        splits[train_split],
        splits[test_split],
        ("background",) + VOC_CLASSES,
        lut,
        255,
        source=f"PASCAL VOC{year} segmentation layout at {base}",
        meta={"year": year, "train_split": train_split, "test_split": test_split},
    )


@DATASETS.register(
    "voc2012-seg",
    document="003 A.2",
    summary="PASCAL VOC 2012 semantic segmentation (train → val), real VOCdevkit layout.",
)
def voc2012_seg(root, allow_download, *, train_split="train", test_split="val"):
    if find_voc_dir(root, "2012") is None and allow_download and root is not None:
        from torchvision.datasets import VOCSegmentation

        VOCSegmentation(str(root), year="2012", image_set="trainval", download=True)
    return load_voc_segmentation(root, "voc2012-seg", "2012", train_split, test_split)


# -- smoke generators ----------------------------------------------------------------------------------------

SHAPES = ("rectangle", "ellipse", "triangle")


def _draw_shapes(rng: random.Random, size: tuple[int, int], n_objects: int, n_classes: int):
    """A noisy background with ``n_objects`` filled shapes; returns the image, the (label, box) list and a
    label mask (0 background). Class c is drawn as shape c mod 3 in a class-specific colour."""
    h, w = size
    bg = tuple(rng.randint(0, 80) for _ in range(3))
    img = Image.new("RGB", (w, h), bg)
    mask = Image.new("L", (w, h), 0)
    d, dm = ImageDraw.Draw(img), ImageDraw.Draw(mask)
    objs = []
    for _ in range(n_objects):
        c = rng.randint(1, n_classes)
        bw, bh = rng.randint(max(4, w // 6), max(5, w // 2)), rng.randint(max(4, h // 6), max(5, h // 2))
        x1, y1 = rng.randint(0, w - bw), rng.randint(0, h - bh)
        x2, y2 = x1 + bw - 1, y1 + bh - 1
        colour = ((c * 67) % 200 + 55, (c * 131) % 200 + 55, (c * 29) % 200 + 55)
        shape = SHAPES[(c - 1) % 3]
        for draw, fill in ((d, colour), (dm, c)):
            if shape == "rectangle":
                draw.rectangle([x1, y1, x2, y2], fill=fill)
            elif shape == "ellipse":
                draw.ellipse([x1, y1, x2, y2], fill=fill)
            else:
                draw.polygon([(x1, y2), (x2, y2), ((x1 + x2) // 2, y1)], fill=fill)
        objs.append((c, (x1, y1, x2, y2)))
    noise = np.random.default_rng(rng.randint(0, 2**31)).integers(-8, 9, size=(h, w, 3), dtype=np.int16)
    arr = np.asarray(img).astype(np.int16) + noise
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)), objs, mask


def _voc_xml(image_id: str, size: tuple[int, int], objs, classes, difficult_every: int) -> str:
    h, w = size
    parts = [
        f"<annotation><folder>VOC</folder><filename>{image_id}.jpg</filename>",
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size><segmented>0</segmented>",
    ]
    for j, (c, (x1, y1, x2, y2)) in enumerate(objs):
        diff = int(difficult_every > 0 and j % difficult_every == difficult_every - 1)
        # VOC boxes are 1-based inclusive pixel indices
        parts.append(
            f"<object><name>{classes[c - 1]}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{diff}</difficult><bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
            f"<xmax>{x2 + 1}</xmax><ymax>{y2 + 1}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


def write_voc_detection(
    folder: str | Path,
    n_train: int = 12,
    n_test: int = 6,
    size=(96, 128),
    n_classes: int = 3,
    max_objects: int = 3,
    difficult_every: int = 4,
    seed: int = 0,
    year: str = "2007",
) -> Path:
    """Write a VOC-format detection set of simple shapes under ``folder/VOCdevkit/VOC<year>``; returns folder."""
    folder = Path(folder)
    base = folder / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    ids = {"trainval": [], "test": []}
    for split, n in (("trainval", n_train), ("test", n_test)):
        for k in range(n):
            image_id = f"{'0' if split == 'trainval' else '1'}{k:05d}"
            img, objs, _ = _draw_shapes(rng, tuple(size), rng.randint(1, max_objects), n_classes)
            img.save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
            (base / "Annotations" / f"{image_id}.xml").write_text(
                _voc_xml(image_id, tuple(size), objs, VOC_CLASSES, difficult_every)
            )
            ids[split].append(image_id)
    for split, lst in ids.items():
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(lst) + "\n")
    return folder


def write_voc_segmentation(
    folder: str | Path,
    n_train: int = 8,
    n_test: int = 4,
    size=(64, 80),
    n_classes: int = 4,
    max_objects: int = 3,
    seed: int = 0,
    border: int = 1,
) -> Path:
    """Write a VOC2012-format segmentation set (JPEGs, palette PNG masks with a 255 border around every
    object, as VOC has) under ``folder/VOCdevkit/VOC2012``; returns folder."""
    folder = Path(folder)
    base = folder / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pal = voc_palette()
    ids = {"train": [], "val": []}
    for split, n in (("train", n_train), ("val", n_test)):
        for k in range(n):
            image_id = f"2012_{split[0]}{k:05d}"
            img, _, mask = _draw_shapes(rng, tuple(size), rng.randint(1, max_objects), n_classes)
            m = np.asarray(mask).copy()
            if border:
                edge = np.zeros_like(m, dtype=bool)
                edge[:-1] |= m[:-1] != m[1:]
                edge[:, :-1] |= m[:, :-1] != m[:, 1:]
                m[edge] = 255
            img.save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
            p = Image.fromarray(m, mode="P")
            p.putpalette(pal)
            p.save(base / "SegmentationClass" / f"{image_id}.png")
            ids[split].append(image_id)
    for split, lst in ids.items():
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(lst) + "\n")
    return folder


def smoke_folder(kind: str, options: dict, root: Path | None) -> Path:
    """Where generated smoke data lives: ``root`` if given, else a cache folder keyed by the options."""
    if root is not None:
        return Path(root)
    key = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return cache_dir() / f"{kind}-{key}"


@DATASETS.register(
    "voc-smoke",
    summary="Generated VOC2007-format shapes (JPEG + XML), read by the voc2007 loader.",
    ranges={"n_train": POSITIVE, "n_test": POSITIVE, "size": POSITIVE, "n_classes": POSITIVE, "seed": NON_NEGATIVE},
)
def voc_smoke(root, allow_download, *, n_train=12, n_test=6, size=(96, 128), n_classes=3, seed=0):
    opts = dict(n_train=n_train, n_test=n_test, size=list(size), n_classes=n_classes, seed=seed)
    folder = smoke_folder("voc-smoke", opts, root)
    if find_voc_dir(folder, "2007") is None:
        write_voc_detection(folder, n_train, n_test, tuple(size), n_classes, seed=seed)
    data = load_voc_detection(folder, "voc-smoke", "2007")
    data.source = f"generated shapes ({data.source})"
    return data


@DATASETS.register(
    "voc2012-seg-smoke",
    summary="Generated VOC2012-format segmentation shapes, read by the voc2012-seg loader.",
    ranges={"n_train": POSITIVE, "n_test": POSITIVE, "size": POSITIVE, "n_classes": POSITIVE, "seed": NON_NEGATIVE},
)
def voc2012_seg_smoke(root, allow_download, *, n_train=8, n_test=4, size=(64, 80), n_classes=4, seed=0):
    opts = dict(n_train=n_train, n_test=n_test, size=list(size), n_classes=n_classes, seed=seed)
    folder = smoke_folder("voc2012-seg-smoke", opts, root)
    if find_voc_dir(folder, "2012") is None:
        write_voc_segmentation(folder, n_train, n_test, tuple(size), n_classes, seed=seed)
    data = load_voc_segmentation(folder, "voc2012-seg-smoke", "2012")
    data.source = f"generated shapes ({data.source})"
    return data
