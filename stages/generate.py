"""generate@<dataset>: make one dataset and split off its stratified test part."""

from intuition import files
from intuition.config import load_stage
from intuition.datasets import make_dataset, split_test


def main() -> None:
    params, name = load_stage("datasets")
    spec = params.datasets[name]
    X, y = make_dataset(spec, params.seed)
    X_train, X_test, y_train, y_test = split_test(X, y, spec.test_fraction, params.seed)
    files.write_dataset(files.dataset_file(name, "train"), X_train, y_train)
    files.write_dataset(files.dataset_file(name, "test"), X_test, y_test)
    print(f"{name}: {len(y_train)} train rows, {len(y_test)} test rows, {spec.n_classes} classes")


if __name__ == "__main__":
    main()
