"""The labeling stage: listing text → candidate terms → embeddings → clusters → vocabulary → weak labels."""

from .assign import LabelAssigner
from .stages import assign_labels, build_vocabulary, labeled_parts, read_labeled
from .vocabulary import Vocabulary, VocabularyBuilder

__all__ = ["LabelAssigner", "Vocabulary", "VocabularyBuilder", "assign_labels", "build_vocabulary", "labeled_parts",
           "read_labeled"]
