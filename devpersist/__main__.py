from devpersist.cli import main

raise SystemExit(main())
