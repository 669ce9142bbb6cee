# Connections per second (connect + upgrade + hello + register), per server.
load plotdir.'/common.gp'
set output outdir.'/connrate.png'
set title 'Connection rate: connect + hello + register'
set ylabel 'connections per second'
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set xrange [-0.6:words(servers)-0.4]
unset key
plot datadir.'/connrate.dat' using 1:3:6:xtic(2) \
         with boxes lc rgb variable, \
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0, \
     '' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,1
