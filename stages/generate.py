"""generate@<dataset>: make (or read) one dataset, check it can be split, and split off its
stratified test part. Every check runs before anything is written to data/<dataset>/."""

from intuition import files
from intuition.config import PARAMS_FILE, CsvData, load_stage, user_errors
from intuition.datasets import check_splittable, class_names, make_dataset, split_test


def main() -> None:
    params, name = load_stage("datasets")
    spec = params.datasets[name]
    with user_errors():
        points = make_dataset(spec, params.seed)
        source = spec.path if isinstance(spec, CsvData) else f"{PARAMS_FILE}: datasets.{name}"
        check_splittable(points, spec, source)
    splits = split_test(points, spec.test_fraction, params.seed)
    files.write_points(files.dataset_file(name, "train"), splits.train)
    files.write_points(files.dataset_file(name, "test"), splits.test)
    mapping = ""
    if isinstance(spec, CsvData):  # which label became which class index
        mapping = " (" + ", ".join(f"{k} = {label}" for k, label in enumerate(class_names(spec))) + ")"
    print(f"{name}: {len(splits.train)} train rows, {len(splits.test)} test rows, {spec.n_classes} classes{mapping}")


if __name__ == "__main__":
    main()
