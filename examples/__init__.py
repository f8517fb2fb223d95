"""The example agreements, shipped inside the package as ``ratify_examples`` so that `ratify demo`
runs from an installed wheel: kanta-hame/ (13 parties, Finnish), vastra-nyland/ (3, Swedish)."""
