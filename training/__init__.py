"""Training: customer CSV -> validated data -> logistic regression -> versioned bundle -> MLflow."""
