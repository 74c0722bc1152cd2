module example.com/goping

go 1.19
