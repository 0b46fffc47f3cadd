"""generate@<dataset>: make one dataset and split off its stratified test part."""

from intuition import files
from intuition.config import load_stage
from intuition.datasets import make_dataset, split_test


def main() -> None:
    params, name = load_stage("datasets")
    spec = params.datasets[name]
    splits = split_test(make_dataset(spec, params.seed), spec.test_fraction, params.seed)
    files.write_points(files.dataset_file(name, "train"), splits.train)
    files.write_points(files.dataset_file(name, "test"), splits.test)
    print(f"{name}: {len(splits.train)} train rows, {len(splits.test)} test rows, {spec.n_classes} classes")


if __name__ == "__main__":
    main()
