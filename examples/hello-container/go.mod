module example.com/hello-container

go 1.24
