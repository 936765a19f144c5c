/* roofline dashboard: typing in an open dropdown menu filters it.
 *
 * dcc.Dropdown (Dash 4) moves the focus to the selected option when a menu opens, and the option
 * list ignores printable keys, so typing did nothing. A printable key pressed inside an open menu
 * now moves the focus to the menu's search box first; the browser then types the character there
 * and the dropdown filters as usual. Space still selects the focused option.
 */
document.addEventListener(
    "keydown",
    function (event) {
        if (event.key.length !== 1 || event.key === " " || event.ctrlKey || event.metaKey || event.altKey) {
            return;
        }
        const menu = event.target.closest && event.target.closest(".dash-dropdown-content");
        const search = menu && menu.querySelector("input.dash-dropdown-search");
        if (search && document.activeElement !== search) {
            search.focus();
        }
    },
    true
);
