# route/: nothing built here yet.
