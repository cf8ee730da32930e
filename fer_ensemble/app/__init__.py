"""Applications: emotions of the faces in images, videos and a webcam, with a saved ensemble."""
from .detector import FaceEmotionDetector, read_image
from .draw import annotate
from .faces import crop_faces, haar_detector, to_gray
from .media import display_available, expand_paths, predict_images, predict_video, run_camera

__all__ = ["FaceEmotionDetector", "read_image", "annotate", "crop_faces", "haar_detector", "to_gray",
           "predict_images", "predict_video", "run_camera", "display_available", "expand_paths"]
