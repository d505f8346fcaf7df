module churn.local/pause

go 1.24
