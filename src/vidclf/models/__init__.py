"""Models: the classifier, the masked-video pretraining model, their optimiser and schedule, and backbones/."""
