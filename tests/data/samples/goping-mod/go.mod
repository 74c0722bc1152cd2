module example.com/gopingmod

go 1.19
