"""Datasets, preprocessing and augmentation."""
