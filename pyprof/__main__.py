from pyprof.cli import main

main()
