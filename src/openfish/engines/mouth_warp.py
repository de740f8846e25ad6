"""Opening a face's mouth with a smooth displacement field, on YUV 4:2:0 planes in place.

The face is described in a mouth-aligned frame: ``a`` runs along the mouth (corner 61 → corner 291)
and ``b`` runs down the face, towards the chin, from the midpoint of the inner lips (13/14). The
seam between the lips is a curve ``b0(a)`` through the midpoints of the inner-lip landmarks.

Opening the mouth by ``D`` pixels moves everything below the seam down: the lower lip by up to ``D``
(most in the middle, nothing at the corners, so the lips stay joined there), the jaw and chin by a
fraction of ``D`` that fades out sideways towards the face outline and below the chin. Nothing
above the seam moves. The seam tears open and the gap is filled by stretching the seam's own
pixels, darkened so it reads as the inside of a mouth. Only a box around the lower face is touched;
every other pixel keeps its exact value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]

#: Inner-lip landmarks of MediaPipe's face mesh, upper and lower, paired from corner to corner.
INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
UPPER_LIP_MID, LOWER_LIP_MID = 13, 14
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
FOREHEAD, CHIN = 10, 152
#: Points of the face oval at about the height of the mouth: the jaw's width there.
JAW_LEFT, JAW_RIGHT = 58, 288

#: How far the jaw moves with the lower lip (the rest of the opening is the lip itself).
JAW_FOLLOW = 0.6
#: Below the chin the jaw's movement fades out over this fraction of the seam-to-chin distance.
CHIN_TAIL = 0.7
#: The lower lip's own movement hands over to the jaw's over this fraction of that distance.
LIP_DEPTH = 0.5
#: The jaw's movement fades out sideways at this fraction of the jaw's half-width.
JAW_REACH = 0.95
#: How far the middle of the gap between the lips is blended towards the inside of a mouth: dark,
#: a little red (Y, U, V, limited range). The stretched seam pixels show through towards the lips.
GAP_DARKEN = 0.85
MOUTH_INSIDE = (36.0, 124.0, 138.0)
#: The opening is capped at this fraction of the seam-to-chin distance: the field then stretches or
#: squeezes the skin by at most ~65 % (smoothstep slopes of 1.5 × share / distance), so it never
#: folds over itself.
MAX_OPENING = 0.5
#: Openings under this many pixels are not drawn: they would only add resampling blur.
MIN_OPENING_PX = 0.5


@dataclass(frozen=True)
class MouthGeometry:
    """A face's mouth and jaw in image pixels, from one frame's face-mesh landmarks."""

    cx: float
    cy: float
    #: Unit vector along the mouth (left corner → right corner).
    ax: float
    ay: float
    #: Unit vector down the face, towards the chin.
    bx: float
    by: float
    #: The seam between the lips: offsets ``seam_b`` (down) at positions ``seam_a`` (along), sorted by a.
    seam_a: Floats
    seam_b: Floats
    #: Middle of the mouth along ``a`` and half its width (corner to corner).
    mouth_mid: float
    mouth_half: float
    #: Half the jaw's width at the height of the mouth.
    jaw_half: float
    #: Distance from the seam's centre down to the chin.
    chin: float
    #: Forehead-to-chin distance: the scale of the face.
    face_height: float

    @classmethod
    def from_landmarks(cls, points: Floats) -> MouthGeometry | None:
        """Geometry from MediaPipe face-mesh landmarks in pixels (shape (468+, 2)); None when the
        face is degenerate (too small, or the mesh folded on itself)."""
        centre = (points[UPPER_LIP_MID] + points[LOWER_LIP_MID]) / 2
        across = points[MOUTH_RIGHT] - points[MOUTH_LEFT]
        width = float(np.hypot(*across))
        face_height = float(np.hypot(*(points[CHIN] - points[FOREHEAD])))
        if width < 4 or face_height < 16:
            return None
        ax, ay = float(across[0]) / width, float(across[1]) / width
        bx, by = -ay, ax  # a quarter turn clockwise in image coordinates (y points down)
        chin_offset = points[CHIN] - centre
        if chin_offset[0] * bx + chin_offset[1] * by < 0:
            bx, by = -bx, -by  # a mirrored mesh: keep b pointing at the chin
        chin = float(chin_offset[0] * bx + chin_offset[1] * by)
        if chin < 2:
            return None

        def along(p: npt.NDArray[np.floating[Any]]) -> Floats:
            rel = p - centre
            return np.asarray(rel[..., 0] * ax + rel[..., 1] * ay, dtype=np.float32)

        def down(p: npt.NDArray[np.floating[Any]]) -> Floats:
            rel = p - centre
            return np.asarray(rel[..., 0] * bx + rel[..., 1] * by, dtype=np.float32)

        seam = (points[list(INNER_UPPER)] + points[list(INNER_LOWER)]) / 2
        order = np.argsort(along(seam))
        corners_mid = (points[MOUTH_LEFT] + points[MOUTH_RIGHT]) / 2
        jaw_width = float(abs(along(points[JAW_RIGHT]) - along(points[JAW_LEFT])))
        return cls(
            cx=float(centre[0]),
            cy=float(centre[1]),
            ax=ax,
            ay=ay,
            bx=bx,
            by=by,
            seam_a=along(seam)[order],
            seam_b=down(seam)[order],
            mouth_mid=float(along(corners_mid)),
            mouth_half=width / 2,
            jaw_half=max(JAW_REACH * jaw_width / 2, width / 2 + 1),
            chin=chin,
            face_height=face_height,
        )

    def box(self, opening: float) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): every pixel a warp by ``opening`` pixels can change lies inside."""
        a0, a1 = self.mouth_mid - self.jaw_half, self.mouth_mid + self.jaw_half
        b0 = float(self.seam_b.min()) - 2
        b1 = float(self.seam_b.max()) + self.chin * (1 + CHIN_TAIL) + opening + 2
        xs = [self.cx + a * self.ax + b * self.bx for a in (a0, a1) for b in (b0, b1)]
        ys = [self.cy + a * self.ay + b * self.by for a in (a0, a1) for b in (b0, b1)]
        return min(xs), min(ys), max(xs), max(ys)


def _smoothstep(x: Floats) -> Floats:
    t = np.clip(x, 0, 1)
    return t * t * (3 - 2 * t)


def _shift_field(xs: Floats, ys: Floats, g: MouthGeometry, opening: float) -> tuple[Floats, Floats]:
    """For output pixels at (xs, ys) (broadcast row × column grids, image pixels): how far up (along
    ``b``) each one's source lies, and how much of it is mouth gap (0..1, for darkening)."""
    dx, dy = xs - np.float32(g.cx), ys - np.float32(g.cy)
    a = dx * np.float32(g.ax) + dy * np.float32(g.ay)
    below = (
        dx * np.float32(g.bx) + dy * np.float32(g.by) - np.interp(a, g.seam_a, g.seam_b).astype(np.float32)
    )
    # Lateral profiles: the lips part most in the middle and stay joined at the corners; the jaw
    # moves as a whole but the face outline at the cheeks stays put.
    lip_x = np.clip((a - np.float32(g.mouth_mid)) / np.float32(g.mouth_half), -1, 1)
    lip = np.power(1 - lip_x * lip_x, np.float32(0.7))
    jaw_x = np.clip((a - np.float32(g.mouth_mid)) / np.float32(g.jaw_half), -1, 1)
    jaw = np.cos(jaw_x * np.float32(np.pi / 2)) ** 2
    gap = np.float32(opening) * lip
    jaw_share = np.float32(opening * JAW_FOLLOW) * jaw
    depth = np.float32(max(g.chin * LIP_DEPTH, 1.0))
    tail = np.float32(max(g.chin * CHIN_TAIL, 1.0))
    # The map is defined from the output side. The pixel ``gap + s`` below the seam shows the one
    # ``moved`` above it: the whole gap at s = 0 (the lower lip's edge meets the gap), handing over
    # with depth to the jaw's share, which fades out below the chin. ``moved`` changes by less than
    # a pixel per pixel (see MAX_OPENING), so the sources stay in order and nothing folds over.
    s = np.maximum(below - gap, 0)
    handover = _smoothstep(s / depth)
    fade = 1 - _smoothstep((s - np.float32(g.chin)) / tail)
    moved = gap * (1 - handover) + jaw_share * handover * fade
    # Inside the gap every pixel shows the seam itself (the lips' meeting line, stretched).
    shift = np.where(below <= 0, 0, np.where(below < gap, below, moved))
    in_gap = (below > 0) & (below < gap)
    phase = np.where(in_gap, below / np.maximum(gap, np.float32(1e-3)), 0)
    darkness = (np.sin(phase * np.float32(np.pi)) ** np.float32(0.6) * np.sqrt(lip)).astype(np.float32)
    return shift.astype(np.float32), np.where(in_gap, darkness, 0).astype(np.float32)


def _warp_plane(
    plane: Plane, g: MouthGeometry, opening: float, box: tuple[int, int, int, int], scale: int, inside: float
) -> None:
    """Warp ``box`` (in this plane's pixels) of one plane in place; ``scale`` is luma pixels per
    plane pixel (1 for Y, 2 for 4:2:0 chroma)."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    half = 0.5 * (scale - 1)  # where a chroma sample sits among the luma pixels it covers
    cols = np.arange(x0, x1, dtype=np.float32)[None, :]
    rows = np.arange(y0, y1, dtype=np.float32)[:, None]
    shift, darkness = _shift_field(cols * scale + half, rows * scale + half, g, opening)
    # cv2.remap resolves 1/32 px: smaller shifts would leave the pixel as it is anyway.
    moved = shift > np.float32(1 / 64)
    if not moved.any():
        return
    step = shift / np.float32(scale)
    map_x = (cols - x0) - step * np.float32(g.bx)
    map_y = (rows - y0) - step * np.float32(g.by)
    region = plane[y0:y1, x0:x1]
    warped = cv2.remap(
        region,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    blend = np.float32(GAP_DARKEN) * darkness
    warped = (warped * (1 - blend) + np.float32(inside) * blend + np.float32(0.5)).astype(np.uint8)
    # Only pixels that moved are written, so the rest of the box keeps its exact values.
    np.copyto(region, warped, where=moved)


def warp_mouth(y: Plane, u: Plane, v: Plane, geometry: MouthGeometry, opening: float) -> bool:
    """Open the mouth by ``opening`` pixels, in place, in a 4:2:0 frame's planes (``y`` has even
    width and height; ``u``/``v`` are half of it). Returns whether any pixel changed."""
    opening = min(opening, MAX_OPENING * geometry.chin)
    if opening < MIN_OPENING_PX:
        return False
    height, width = y.shape
    fx0, fy0, fx1, fy1 = geometry.box(opening)
    # Even bounds, so the chroma box covers exactly the same pixels as the luma box.
    x0 = max(0, int(np.floor(fx0)) & ~1)
    y0 = max(0, int(np.floor(fy0)) & ~1)
    x1 = min(width, (int(np.ceil(fx1)) + 1) & ~1)
    y1 = min(height, (int(np.ceil(fy1)) + 1) & ~1)
    if x1 <= x0 or y1 <= y0:
        return False
    _warp_plane(y, geometry, opening, (x0, y0, x1, y1), 1, MOUTH_INSIDE[0])
    chroma_box = (x0 // 2, y0 // 2, x1 // 2, y1 // 2)
    _warp_plane(u, geometry, opening, chroma_box, 2, MOUTH_INSIDE[1])
    _warp_plane(v, geometry, opening, chroma_box, 2, MOUTH_INSIDE[2])
    return True
