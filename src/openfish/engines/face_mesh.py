"""MediaPipe's face mesh (468 landmarks per face, offline, CPU) behind a small typed wrapper.

MediaPipe ships no type information, so everything it returns is read here and turned into numpy.
A ``FaceTracker`` holds the tracking state of one video stream: make one per stream, never share.
"""

from __future__ import annotations

from importlib.util import find_spec
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from openfish.engines.base import EngineError

#: Landmarks per face in the mesh without iris refinement.
LANDMARKS = 468


def face_mesh_available() -> bool:
    """Whether MediaPipe and OpenCV are installed (without importing them, which takes a second)."""
    return find_spec("mediapipe") is not None and find_spec("cv2") is not None


class FaceTracker:
    """Finds the largest face in each frame of one stream, tracking it from frame to frame.

    Frames are RGB ``uint8`` arrays of any size; landmarks come back as fractions of the frame's
    width and height, so they can be scaled to a larger copy of the same frame.
    """

    def __init__(self, max_faces: int = 3, min_confidence: float = 0.5) -> None:
        from mediapipe.python.solutions import face_mesh  # type: ignore[import-untyped]

        # Tracking mode: the detector runs only until a face is found, then the mesh follows it.
        self._mesh: Any = face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=max_faces,
            refine_landmarks=False,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def largest_face(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32] | None:
        """The landmarks (shape (468, 2), x and y as fractions of the frame) of the largest face in
        ``rgb``, or None when there is no face."""
        try:
            results = self._mesh.process(rgb)
        except RuntimeError as err:  # MediaPipe reports a failed graph run this way
            raise EngineError(f"the face mesh failed: {err}") from err
        faces = results.multi_face_landmarks
        if not faces:
            return None
        best: npt.NDArray[np.float32] | None = None
        best_area = -1.0
        height, width = rgb.shape[:2]
        for face in faces:
            points = np.array([(p.x, p.y) for p in face.landmark[:LANDMARKS]], dtype=np.float32)
            span = (points.max(axis=0) - points.min(axis=0)) * np.array([width, height], dtype=np.float32)
            area = float(span[0] * span[1])
            if area > best_area:
                best, best_area = points, area
        return best

    def close(self) -> None:
        """Free the MediaPipe graph."""
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
