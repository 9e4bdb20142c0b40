# store/: nothing built here yet.
