"""Suipai (随拍即办): residents report street problems; the district routes and handles them."""
