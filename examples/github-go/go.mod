module example.com/hello-github

go 1.24
