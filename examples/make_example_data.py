"""Generate a synthetic marketplace dump: listings.csv plus one photo per listing.

    python examples/make_example_data.py --n 2000 --seed 0 --image-size 64 --out out/example-data
"""

from __future__ import annotations

import argparse

from weaklabel.synthetic import generate_listings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of listings")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--out", default="out/example-data", help="output folder")
    args = parser.parse_args(argv)
    df = generate_listings(args.n, args.out, seed=args.seed, image_size=args.image_size,
                           progress=True)
    types = df["true_type"].value_counts()
    print(f"wrote {len(df)} listings ({types.size} product types, most common "
          f"{types.index[0]!r} x{types.iloc[0]}) to {args.out}/listings.csv and {args.out}/images/")


if __name__ == "__main__":
    main()
