"""Category images (SVG) served at /products/images/<category>.svg; package data."""
