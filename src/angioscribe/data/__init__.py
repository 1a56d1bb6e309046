"""Datasets: ARCADE import and the catalog of images and cines with leak-free splits."""
