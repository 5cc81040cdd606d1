# Written by bench_report; redraw with `gnuplot 2026-11-26-throughput.gp` in this directory.
set terminal pngcairo size 1200,640 font 'sans,11' noenhanced
set output '2026-11-26-throughput.png'
set logscale x 10
set xrange [0.625:16000.000]
set xtics ('1' 1, '100' 100, '1,000' 1000, '10,000' 10000)
set xlabel 'concurrent connections'
set ylabel 'round trips per second'
set yrange [0:*]
set format y '%.0s%c'
set grid
set key below horizontal maxrows 1
set multiplot layout 1,2 title "TCP ping-pong throughput (median of 3 runs)\n2026-11-26, 2 cores, AMD EPYC, Linux 6.18.44-fc-v657"
set title '64 B messages'
plot '2026-11-26-throughput.dat' index 0 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#1f77b4' title 'coronet-1t', \
     '2026-11-26-throughput.dat' index 1 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#2ca02c' title 'coronet-2t', \
     '2026-11-26-throughput.dat' index 2 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#ff7f0e' title 'asio', \
     '2026-11-26-throughput.dat' index 3 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#444444' title 'asio-coro', \
     '2026-11-26-throughput.dat' index 4 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#9467bd' title 'epoll'
set title '4,096 B messages'
plot '2026-11-26-throughput.dat' index 5 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#1f77b4' title 'coronet-1t', \
     '2026-11-26-throughput.dat' index 6 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#2ca02c' title 'coronet-2t', \
     '2026-11-26-throughput.dat' index 7 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#ff7f0e' title 'asio', \
     '2026-11-26-throughput.dat' index 8 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#444444' title 'asio-coro', \
     '2026-11-26-throughput.dat' index 9 using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#9467bd' title 'epoll'
unset multiplot
