# The stock client libraries the tests and the demo run (sourced):
#   node_install DIR PACKAGE...  the npm PACKAGEs that DIR/node_modules lacks,
#                                installed there (npm's output in DIR/npm.log);
#                                returns npm's status
# Scripts that import them (.mjs) are copied into DIR, since Node resolves
# an import from the importing file's folder.
node_missing() { # DIR PACKAGE...: the PACKAGEs DIR/node_modules lacks
    local dir=$1 package
    shift
    for package in "$@"; do
        [ -f "$dir/node_modules/$package/package.json" ] || echo "$package"
    done
}
node_install() {
    local dir=$1
    shift
    [ -z "$(node_missing "$dir" "$@")" ] && return 0
    # Tests run in parallel and share DIR: one npm at a time in it, and the
    # ones that waited find the packages there.
    mkdir -p "$dir" && (
        flock 9 || exit 1
        missing=$(node_missing "$dir" "$@")
        [ -z "$missing" ] ||
            npm install --prefix "$dir" --no-audit --no-fund $missing >"$dir/npm.log" 2>&1
    ) 9>"$dir/.install.lock"
}
