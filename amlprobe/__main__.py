from amlprobe.cli import main

raise SystemExit(main())
