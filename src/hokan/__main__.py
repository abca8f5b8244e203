from hokan.cli import main

main()
