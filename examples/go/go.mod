module dcache.example/dcache

go 1.19
