# bash completion for curlcache(1): subcommands, their options, backend names, files for
# the options that take one, and the command line after `curlcache run`.
# Installed as share/bash-completion/completions/curlcache; needs nothing from the
# bash-completion package, so `source` works in any bash.

# The backends this curlcache was built with (`curlcache --version`), else all four.
_curlcache_backends() {
    local line
    line=$("${1:-curlcache}" --version 2>/dev/null | sed -n 's/^backends: //p')
    printf '%s\n' "${line:-sqlite filesystem memory redis}"
}

# The options of one subcommand (the global ones come on top).
_curlcache_options() {
    case $1 in
    run) echo "--offline --refresh --readonly --stats" ;;
    stats) echo "--json --zero" ;;
    list) echo "--expired --url --why --json" ;;
    show) echo "--body --json --output --force" ;;
    export) echo "--to --har" ;;
    import) echo "--from --har" ;;
    config) echo "--json --check" ;;
    esac
}

_curlcache() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="run stats list show delete clear purge vacuum export import config help"
    local global="--config --backend --name --help"
    COMPREPLY=()

    # --option=value: bash splits the word at '=' (COMP_WORDBREAKS).
    if [[ $prev == "=" && $COMP_CWORD -ge 2 ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == "=" ]]; then
        cur=""
    fi

    # The value of an option.
    case $prev in
    --config | --har | --check | --name | --output | -o)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    --backend)
        local backends
        backends=$(_curlcache_backends "${COMP_WORDS[0]}")
        mapfile -t COMPREPLY < <(compgen -W "$backends" -- "${cur##*,}")
        if [[ $cur == *,* ]]; then # a list of tiers: complete its last name
            local i
            for i in "${!COMPREPLY[@]}"; do
                COMPREPLY[i]=${cur%,*},${COMPREPLY[i]}
            done
        fi
        return 0
        ;;
    --to | --from)
        mapfile -t COMPREPLY < <(compgen -W "sqlite:/// filesystem:/// redis://" -- "$cur"
            compgen -f -- "$cur")
        if [[ ${#COMPREPLY[@]} -gt 0 && ${COMPREPLY[0]} == *:// ]] && type compopt &>/dev/null; then
            compopt -o nospace
        fi
        return 0
        ;;
    --url)
        return 0
        ;;
    esac

    # Find the subcommand: the first word that is neither an option nor an option's value.
    local i=1 command="" word
    while ((i < COMP_CWORD)); do
        word=${COMP_WORDS[i]}
        case $word in
        --config | --backend | --name | --url | --to | --from | --har | --check | --output | -o | --max-size | -M)
            ((i += 1)) # its value follows
            ;;
        -*) ;;
        *)
            command=$word
            break
            ;;
        esac
        ((i += 1))
    done

    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$global --version --show-stats --zero-stats --clear --max-size --show-config -s -z -C -M -p -V" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        fi
        return 0
    fi

    case $command in
    help)
        ((i + 1 == COMP_CWORD)) && mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        return 0
        ;;
    run)
        # After the first word that is not an option comes a command line of its own.
        local j=$((i + 1))
        while ((j < COMP_CWORD)); do
            word=${COMP_WORDS[j]}
            case $word in
            --config | --backend | --name) ((j += 1)) ;;
            --) ;;
            -*) ;;
            *) break ;;
            esac
            ((j += 1))
        done
        if ((j < COMP_CWORD)); then
            return 0 # an argument of the program: bash's default (files)
        fi
        if [[ $cur != -* ]]; then
            mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            return 0
        fi
        ;;
    esac

    if [[ $cur == -* || -z $cur ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_curlcache_options "$command") $global" -- "$cur")
    fi
    return 0
}

complete -F _curlcache -o bashdefault -o default curlcache
